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
from .fit import FitResult, ParamResult
from .trace import TraceFit


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
    now, src = _stamp("sessions", fit.sessions)
    lines = _head(base, machine, name, now, "sessions", fit.sessions)
    lines += [
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
    lines += _param_lines(machine, fit.params, src, {})
    if fit.homing_s is not None:
        lines += [
            "",
            "[gcode]",
            f"homing_s = {{ value = {fit.homing_s:.4g}, source = {_q(src + ': mean G28 time')} }}",
        ]
    lines += _holdout_lines(holdout or [], src)
    return _write(path, lines)


def write_trace_profile(
    path: str | Path,
    base: str,
    machine: FdmMachine,
    fit: TraceFit,
    *,
    stated: dict[str, float] | None = None,
    holdout: list[dict] | None = None,
) -> Path:
    """Write the calibrated overlay of a fit to power traces (:func:`.trace.fit_traces`);
    ``stated`` values (e.g. ``electrical.psu_efficiency`` of a DC-side meter) were given by
    the user, not fitted. A changed bed's loss factor is a property of that run, not of the
    printer, so it is kept as a note."""
    now, src = _stamp("power traces", fit.runs)
    ts = fit.params["time_scale"]
    lines = _head(base, machine, None, now, "sessions", fit.runs)
    notes = [*fit.notes]
    notes += [
        f"{k}: {p.value:.4g} ± {_num(p.stderr)}" for k, p in fit.params.items() if k.count(".") > 1
    ]
    lines += [
        f"time_scale = {{ value = {ts.value:.6g}, stderr = {_num(ts.stderr)},"
        f" source = {_q(src + ': mean real print time / planner time of the runs')} }}",
        f"rms_curve = {{ value = {fit.rms_curve:.4g}, source = "
        f"{_q(src + ': RMS cumulative-energy residual, fraction of each run')} }}",
        "notes = [" + ", ".join(_q(n) for n in notes) + "]",
    ]
    lines += _param_lines(machine, fit.params, src, stated or {})
    lines += _holdout_lines(holdout or [], src + ", leave-one-out")
    return _write(path, lines)


def _stamp(what: str, names: list[str]) -> tuple[str, str]:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return now, f"fit: slicer-energy {__version__} calibrate, {now}, {what} {', '.join(names)}"


def _head(
    base: str, machine: FdmMachine, name: str | None, now: str, key: str, names: list[str]
) -> list[str]:
    return [
        "# Calibrated machine profile written by `slicer-energy calibrate`.",
        "# An overlay: the [calibration] base profile with the values below in place.",
        f"name = {_q(name or machine.name + '-calibrated')}",
        "",
        "[calibration]",
        f"base = {_q(base)}",
        f"created_utc = {_q(now)}",
        f"software = {_q('slicer-energy ' + __version__)}",
        f"{key} = [" + ", ".join(_q(s) for s in names) + "]",
    ]


def _param_lines(
    machine: FdmMachine, params: dict[str, ParamResult], src: str, stated: dict[str, float]
) -> list[str]:
    """The overlay tables: fitted values with their source, those the data did not determine
    with the base's source, ``stated`` ones as given by the user."""
    lines = []
    for table in ("hotend", "bed", "electrical", "filament"):
        lines += ["", f"[{table}]"]
        for key, p in params.items():
            g, _, k = key.partition(".")
            if g != table or "." in k:
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
        for key, v in stated.items():
            if key.partition(".")[0] == table:
                lines.append(
                    f"{key.partition('.')[2]} = {{ value = {v:.6g}, "
                    f"source = {_q('stated by the user at calibration')} }}"
                )
    return lines


def _holdout_lines(holdout: list[dict], src: str) -> list[str]:
    if not holdout:
        return []
    lines = ["", "# held-out validation"]
    for h in holdout:
        lines += [
            "[[holdout]]",
            f"session = {_q(h['session'])}",
            f"energy_kwh_measured = {{ value = {h['energy_kwh_measured']:.6g}, "
            f"source = {_q('meter')} }}",
            f"energy_kwh_predicted = {{ value = {h['energy_kwh_predicted']:.6g}, "
            f"source = {_q(src)} }}",
        ]
    return lines


def _write(path: str | Path, lines: list[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _num(x: float) -> str:
    return "nan" if x != x else f"{x:.4g}"
