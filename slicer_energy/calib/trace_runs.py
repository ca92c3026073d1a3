"""Calibration from what a maker has: a power export per print and the G-code that was printed.

Each run is a power trace (any export :func:`.inputs.plug.read_plug` reads: Tasmota,
Shelly, Home Assistant, or a CSV with times or sample intervals and watts) plus its G-code
and the run's stated state (:class:`RunState`); :func:`load_runs` turns them into
:class:`.trace.TraceRun` objects (one G-code timeline per distinct file), which
:func:`.trace.fit_traces` fits jointly. :func:`leave_one_out` predicts each run from a fit to
the others: the check that the fitted profile predicts a print it has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CalibrationError
from ..machine import FdmMachine
from .inputs.plug import has_intervals, read_plug
from .inputs.trace import Interruption, PowerTrace, read_power_trace
from .trace import TraceRun, bed_condition_key, fit_traces, predict_run, timeline

STATE_WORDS = ("as-printed", "bed-off", "hotend-off", "hot-start", "bed=NAME")


@dataclass(frozen=True)
class RunState:
    """What differed from the G-code during a run: a heater switched off by hand, a start with
    the heaters already hot, or a changed bed (its name gets its own fitted loss factor)."""

    bed_on: bool = True
    hotend_on: bool = True
    start_hot: bool = False
    bed_condition: str | None = None


def parse_run_state(text: str) -> RunState:
    """``"bed-off,hot-start"`` / ``"bed=insulated"`` / ``"as-printed"`` -> :class:`RunState`."""
    kw: dict = {}
    for word in (w.strip().lower() for w in text.split(",") if w.strip()):
        if word == "as-printed":
            continue
        if word == "bed-off":
            kw["bed_on"] = False
        elif word == "hotend-off":
            kw["hotend_on"] = False
        elif word == "hot-start":
            kw["start_hot"] = True
        elif word.startswith("bed=") and word[4:].replace("-", "").replace("_", "").isalnum():
            kw["bed_condition"] = word[4:]
        else:
            raise CalibrationError(
                f"--run-state: unknown word {word!r}; use comma-separated {', '.join(STATE_WORDS)}"
            )
    return RunState(**kw)


def read_trace(path: str | Path, **plug_options) -> PowerTrace:
    """A plug export as a bare power trace (seconds from its first reading). No clock is
    aligned here, so an interval-only CSV needs no start time, and a CSV with the logger's
    own intervals is timed by them (measured to the millisecond; its timestamps may be
    rounded to the second, ±25 % of a 2 s interval, or the minute)."""
    if plug_options.get("fmt", "auto") in ("auto", "generic") and has_intervals(path):
        return read_power_trace(path)
    pt = read_plug(path, **plug_options)
    return PowerTrace(str(path), pt.t_s - pt.t_s[0], pt.power_w)


def load_runs(
    pairs: list[tuple[str | Path, str | Path, RunState]],
    base: FdmMachine,
    **plug_options,
) -> list[TraceRun]:
    """One :class:`TraceRun` per (power export, G-code, state); a G-code shared by several
    runs is analysed once. A run with the hotend off extruded nothing."""
    tls: dict[Path, tuple] = {}
    runs = []
    for power, gcode, st in pairs:
        g = Path(gcode)
        if not g.is_file():
            raise CalibrationError(f"{g}: G-code not found (--gcode)")
        if g.resolve() not in tls:
            tls[g.resolve()] = timeline(g, base)
        rows, grams = tls[g.resolve()]
        runs.append(
            TraceRun(
                Path(power).name,
                read_trace(power, **plug_options),
                rows,
                bed_on=st.bed_on,
                hotend_on=st.hotend_on,
                start_hot=st.start_hot,
                bed_condition=st.bed_condition,
                filament_g=grams if st.hotend_on else 0.0,
            )
        )
    return runs


@dataclass
class HeldOut:
    """One run predicted by a fit to the others."""

    run: str
    window_s: tuple[float, float]
    interruptions: list[Interruption]
    measured_j: float
    predicted_j: float
    predicted_s: float
    not_identified: list[str]  # parameters the other runs left at the prior that this run uses

    @property
    def error(self) -> float:
        return self.predicted_j / self.measured_j - 1.0

    @property
    def measured_s(self) -> float:
        return self.window_s[1] - self.window_s[0]

    def as_dict(self) -> dict:
        return {
            "session": self.run,
            "window_s": list(self.window_s),
            "interruptions_s": [[i.t0_s, i.t1_s, i.steppers] for i in self.interruptions],
            "energy_kwh_measured": self.measured_j / 3.6e6,
            "energy_kwh_predicted": self.predicted_j / 3.6e6,
            "energy_error": self.error,
            "time_s_measured": self.measured_s,
            "time_s_predicted": self.predicted_s,
            "not_identified": self.not_identified,
        }


def leave_one_out(runs: list[TraceRun], base: FdmMachine) -> list[HeldOut]:
    """Each run predicted from its G-code, stated state and interruptions' timing by a fit
    to all the others."""
    if len(runs) < 2:
        raise CalibrationError("--leave-one-out needs at least two --power-csv runs")
    conds = tuple(sorted({r.bed_condition for r in runs if r.bed_condition}))
    out = []
    for i, r in enumerate(runs):
        fit = fit_traces([x for j, x in enumerate(runs) if j != i], base, conditions=conds)
        e, t = predict_run(r, fit)
        nid = [k for k, p in fit.params.items() if not p.identified and uses(k, r)]
        out.append(HeldOut(r.name, r.window, r.interruptions(), r.energy_j(), e, t, nid))
    return out


def uses(key: str, r: TraceRun) -> bool:
    """Whether fitted parameter ``key`` enters run ``r``'s prediction."""
    if key.startswith("bed.r_factor."):
        return key == bed_condition_key(r.bed_condition or "")
    if key.startswith("bed."):
        return r.bed_on
    if key.startswith("hotend."):
        return r.hotend_on
    return True
