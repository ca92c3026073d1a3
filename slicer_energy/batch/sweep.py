"""Sweep files: which settings a batch crosses with its parts.

A sweep is a TOML table of axes (``copies = [1, 10, "fill"]``). Top-level axes apply to
every process that takes them; ``[sls]``, ``[mls]``, ``[fdm]`` tables set axes for one
process. Every axis and value is checked when the file is read, and an error names the
file, the line, the axis and the value, before any work starts.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SettingsError, SlicerEnergyError

PROCESSES = ("fdm", "sls", "mls")


@dataclass(frozen=True)
class Axis:
    """One sweep axis: the processes it applies to and how a value is checked."""

    processes: tuple[str, ...]
    check: Callable[[Any], Any]  # returns the normalised value or raises ValueError
    help: str


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError("expected a non-empty string")
    return v


def _process(v: Any) -> str:
    if v not in PROCESSES:
        raise ValueError(f"expected one of {', '.join(PROCESSES)}")
    return v


def _copies(v: Any) -> str:
    if v == "fill":
        return "fill"
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError('expected a whole number >= 1 or "fill"')
    return str(v)


def _number(lo: float, hi: float) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ValueError(f"expected a number in {lo}..{hi}")
        return float(v)

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _variant(v: Any) -> str:
    if v not in ("nominal", "low", "high"):
        raise ValueError("expected nominal, low or high")
    return v


AXES: dict[str, Axis] = {
    "process": Axis(PROCESSES, _process, "fdm, sls, mls"),
    "machine": Axis(PROCESSES, _str, "machine profile name (hardware/...) or .toml path"),
    "material": Axis(PROCESSES, _str, "material name (machine default if absent)"),
    "copies": Axis(("sls", "mls"), _copies, 'copies in one build, or "fill" (a full build)'),
    "variant": Axis(("mls",), _variant, "the study's nominal/low/high energy variant"),
    "preset": Axis(("fdm",), _str, "FDM print settings preset"),
    "layer_height": Axis(("fdm",), _number(0.01, 1.0), "FDM layer height, mm"),
    "infill": Axis(("fdm",), _number(0.0, 100.0), "FDM sparse infill, %"),
    "supports": Axis(("fdm",), _bool, "FDM supports on/off"),
    "grid": Axis(PROCESSES, _str, "electricity mix (lca/background/electricity.toml id)"),
}
ALIASES = {"printer": "machine"}
# Axes that change the prediction (``grid`` only converts kWh to CO2e afterwards).
MODEL_AXES = tuple(a for a in AXES if a != "grid")
FDM_OPTION = {
    "preset": "preset",
    "layer_height": "layer_height_mm",
    "infill": "infill_percent",
    "supports": "supports",
}


@dataclass(frozen=True)
class Sweep:
    """Per process, the axes and their values (the job list is their cross product)."""

    by_process: dict[str, dict[str, tuple[Any, ...]]]
    grids: tuple[str, ...] = ()
    path: Path | None = None

    def settings(self) -> list[tuple[str, dict[str, Any]]]:
        """Every (process, settings) combination, in a stable order."""
        out = []
        for proc, axes in self.by_process.items():
            names = list(axes)
            for combo in itertools.product(*(axes[n] for n in names)):
                out.append((proc, dict(zip(names, combo, strict=True))))
        return out


def _line_of(text: str, key: str) -> str:
    """' line N' of the first ``key =`` or ``[key]`` in a TOML text (for messages)."""
    pat = re.compile(rf"^\s*(\[\s*{re.escape(key)}\s*\]|\"?{re.escape(key)}\"?\s*=)", re.M)
    m = pat.search(text)
    return f" line {text.count(chr(10), 0, m.start()) + 1}" if m else ""


def _grid_ids() -> list[str]:
    from ..lca.data import load_background

    return load_background().ids("electricity")


def parse_sweep(values: dict[str, Any], where: str = "sweep", text: str = "") -> Sweep:  # noqa: C901, PLR0912 - one check per sweep key, each its own error
    """Check a sweep table: top-level axes apply to every process that takes them,
    ``[sls]``/``[mls]``/``[fdm]`` tables set axes for one process only. Without a
    ``process`` axis or a process table the process is FDM, as in ``predict``.

    Raises :class:`SettingsError` naming the file, line, axis and value on any unknown
    axis or value (before any work starts: a sweep is cheap to fix, hours are not).
    """

    def bad(key: str, msg: str) -> SettingsError:
        return SettingsError(f"{where}{_line_of(text, key)}: {msg}")

    def values_of(key: str, raw: Any, proc: str | None) -> tuple[Any, ...]:
        name = ALIASES.get(key, key)
        if name not in AXES:
            known = ", ".join(sorted([*AXES, *ALIASES]))
            raise bad(key, f"unknown axis {key!r}; known axes: {known}")
        if proc and proc not in AXES[name].processes:
            raise bad(key, f"[{proc}] takes no axis {key!r} (it applies to {AXES[name].processes})")
        vals = raw if isinstance(raw, list) else [raw]
        if not vals:
            raise bad(key, f"axis {key!r} has no values")
        out = []
        for v in vals:
            try:
                out.append(AXES[name].check(v))
            except ValueError as exc:
                raise bad(key, f"axis {key!r}: value {v!r} is not valid ({exc})") from None
        if len(set(out)) != len(out):
            raise bad(key, f"axis {key!r} repeats a value: {vals}")
        return tuple(out)

    top: dict[str, tuple[Any, ...]] = {}
    per: dict[str, dict[str, tuple[Any, ...]]] = {}
    for key, raw in values.items():
        if key in PROCESSES and isinstance(raw, dict):
            per[key] = {ALIASES.get(k, k): values_of(k, v, key) for k, v in raw.items()}
        else:
            top[ALIASES.get(key, key)] = values_of(key, raw, None)
    grids = top.pop("grid", ())
    for tbl in per.values():
        if "grid" in tbl:
            raise bad("grid", "set the 'grid' axis at the top level (it applies to all jobs)")
    if grids:
        known = _grid_ids()
        for g in grids:
            if g not in known:
                raise bad("grid", f"axis 'grid': unknown electricity mix {g!r}; known: {known}")
    procs = top.pop("process", None) or tuple(per) or ("fdm",)  # like predict
    for p in per:
        if p not in procs:
            raise bad(p, f"table [{p}] but process {p!r} is not in the 'process' axis {procs}")
    for k in top:  # an axis no process takes would be dropped: fewer jobs than meant
        if not set(AXES[k].processes) & set(procs):
            raise bad(
                k,
                f"axis {k!r} applies to {', '.join(AXES[k].processes)} only, not to this "
                f"sweep's process(es) {', '.join(procs)}; add the process to the 'process' "
                "axis or remove the axis",
            )
    by_process: dict[str, dict[str, tuple[Any, ...]]] = {}
    for p in procs:
        axes = {k: v for k, v in top.items() if p in AXES[k].processes}
        axes.update(per.get(p, {}))
        by_process[p] = axes
    _check_profiles(by_process, where, text)
    return Sweep(by_process=by_process, grids=tuple(grids))


def _check_profiles(by_process: dict[str, dict[str, tuple]], where: str, text: str) -> None:
    """Machines and materials must exist for their process (named in the error)."""
    for proc, axes in by_process.items():
        if proc == "fdm":
            continue  # checked by the FDM model itself; failures become error rows
        for machine in axes.get("machine", (None,)):
            try:
                mach = layer_grid_machine(proc, machine)
            except SlicerEnergyError as exc:
                raise SettingsError(
                    f"{where}{_line_of(text, 'machine')}: {proc} machine {machine!r}: {exc}"
                ) from None
            for material in axes.get("material", ()):
                try:
                    mach.material(material)
                except SlicerEnergyError as exc:
                    raise SettingsError(
                        f"{where}{_line_of(text, 'material')}: axis 'material': {exc}"
                    ) from None


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep TOML file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        values = tomllib.loads(text)
    except FileNotFoundError:
        raise SettingsError(f"{p}: sweep file not found") from None
    except UnicodeDecodeError as exc:
        why = f"byte {exc.start}: {exc.reason}"
        raise SettingsError(f"{p}: not a UTF-8 text file ({why})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{p}: not valid TOML ({exc})") from None
    sw = parse_sweep(values, where=str(p), text=text)
    return Sweep(by_process=sw.by_process, grids=sw.grids, path=p)


DEFAULT_SWEEP = Sweep(by_process={"fdm": {}})  # predict's default: FDM


def layer_grid_machine(process: str, machine: str | None) -> Any:
    """The machine profile a job of ``process`` runs on (its layer thickness sets the grid)."""
    from ..predict import DEFAULT_MACHINE

    if process == "sls":
        from ..sintering.sls import load_sls_machine

        return load_sls_machine(machine or DEFAULT_MACHINE["sls"])
    if process == "mls":
        from ..sintering.mls import load_mls_machine

        return load_mls_machine(machine or DEFAULT_MACHINE["mls"])
    raise SettingsError(f"no shared layer grid for process {process!r}")


def layer_grid(process: str, machine: str | None) -> tuple | None:
    """(pitch_xy_mm, dz_mm, with_supports) the process model would voxelise at, or None.

    Must match what :func:`predict_sls` / :func:`predict_mls` compute themselves, so that
    a reused grid gives the identical estimate (the batch test checks it).
    """
    if process == "sls":
        from ..sintering.sls import DEFAULT_PITCH_XY_MM

        return (DEFAULT_PITCH_XY_MM, layer_grid_machine(process, machine).layer_mm, False)
    if process == "mls":
        from ..sintering.mls import DEFAULT_PITCH_MM

        return (DEFAULT_PITCH_MM, DEFAULT_PITCH_MM, True)
    return None
