"""Write a calibrated profile: an overlay on a machine profile with the fitted values.

Every fitted number carries its standard error, whether the sessions determined it, and a
source naming the sessions; numbers the sessions could not determine keep the base value
and its original source. Loading is :func:`slicer_energy.machine.load_machine` (the one
place that resolves overlays), so ``gcode --profile`` and ``predict --profile`` read it.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from .. import __version__
from ..machine import FdmMachine
from .fit import FitResult


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_profile(
    path: str | Path,
    base: str,
    machine: FdmMachine,
    fit: FitResult,
    *,
    holdout: list[dict] | None = None,
    name: str | None = None,
) -> Path:
    """Write the calibrated overlay TOML for ``machine`` (loaded from ``base``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    src = f"fit: slicer-energy {__version__} calibrate, {now}, sessions {', '.join(fit.sessions)}"
    lines = [
        "# Calibrated machine profile written by `slicer-energy calibrate`.",
        "# An overlay: the [calibration] base profile with the values below in place.",
        f"name = {_q(name or machine.name + '-calibrated')}",
        "",
        "[calibration]",
        f"base = {_q(base)}",
        f"created_utc = {_q(now)}",
        f"software = {_q('slicer-energy ' + __version__)}",
        "sessions = [" + ", ".join(_q(s) for s in fit.sessions) + "]",
        f"time_scale = {{ value = {fit.time_scale:.6g}, stderr = {_num(fit.time_scale_stderr)},"
        f" source = {_q(src + ': real print time / planner time')} }}",
        f"wait_extra_s = {{ value = {fit.wait_extra_s:.4g}, source = "
        f"{_q(src + ': measured M109/M190 time beyond ideal control, per wait')} }}",
        f"r2 = {{ value = {fit.r2:.6f}, source = {_q(src)} }}",
        f"rms_w = {{ value = {fit.rms_w:.4f}, source = {_q(src)} }}",
        f"n_power_samples = {{ value = {fit.n_power}, source = {_q(src)} }}",
    ]
    for h, v in sorted(fit.rms_temp_c.items()):
        lines.append(f"rms_temp_c_{h} = {{ value = {v:.4f}, source = {_q(src)} }}")
    lines.append("notes = [" + ", ".join(_q(n) for n in fit.notes) + "]")
    for table in ("hotend", "bed", "electrical", "filament"):
        lines += ["", f"[{table}]"]
        for key, p in fit.params.items():
            g, k = key.split(".")
            if g != table:
                continue
            if p.identified:
                s = src
            else:
                orig = machine.source.get(key, "")
                s = f"prior (not determined by the sessions): {orig}" if orig else "prior"
            lines.append(
                f"{k} = {{ value = {p.value:.6g}, stderr = {_num(p.stderr)}, "
                f"identified = {'true' if p.identified else 'false'}, source = {_q(s)} }}"
            )
    if fit.homing_s is not None:
        lines += [
            "",
            "[gcode]",
            f"homing_s = {{ value = {fit.homing_s:.4g}, source = {_q(src + ': mean G28 time')} }}",
        ]
    if holdout:
        lines += ["", "# held-out validation"]
        for h in holdout:
            lines += [
                "[[holdout]]",
                f"session = {_q(h['session'])}",
                f"energy_kwh_measured = {{ value = {h['energy_kwh_measured']:.6g}, "
                f"source = {_q('meter')} }}",
                f"energy_kwh_predicted = {{ value = {h['energy_kwh_predicted']:.6g}, "
                f"source = {_q(src)} }}",
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _num(x: float) -> str:
    return "nan" if x != x else f"{x:.4g}"
