"""Predict a session's job (heat-up + print) from its G-code and compare with the meter.

The G-code is the one the session actually sent (from ``serial.log``), planned by the
G-code planner and integrated by the thermal timeline of :mod:`slicer_energy.gcode.analyze`
with the calibrated machine, so a held-out check exercises exactly what ``gcode --profile``
and ``predict --profile`` will compute. The planner's motion time is multiplied by the fitted
time-scale factor (real machine / planner).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..gcode.analyze import GcodeResult, analyze_file
from ..machine import FdmMachine
from .fit import FitResult, calibrated_machine, fit_sessions
from .session import Session


@dataclass
class Prediction:
    session: str
    energy_kwh_measured: float
    energy_kwh_predicted: float
    time_s_measured: float
    time_s_predicted: float

    @property
    def energy_error(self) -> float:
        return self.energy_kwh_predicted / self.energy_kwh_measured - 1.0

    def as_dict(self) -> dict:
        return {
            "session": self.session,
            "energy_kwh_measured": self.energy_kwh_measured,
            "energy_kwh_predicted": self.energy_kwh_predicted,
            "energy_error": self.energy_error,
            "time_s_measured": self.time_s_measured,
            "time_s_predicted": self.time_s_predicted,
        }


def analyze_lines(
    lines: list[str], machine: FdmMachine, mode: str | None = None, thermal: bool = True
) -> GcodeResult:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "job.gcode"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return analyze_file(p, machine, mode=mode, thermal=thermal, timeline=True)


def _non_wait(res: GcodeResult) -> tuple[float, float]:
    """(seconds, joules) of the timeline's planned motion (what the time scale scales)."""
    t = e = 0.0
    for r in res.timeline:
        if r.kind == "motion":
            t += r.t1_s - r.t0_s
            e += r.energy_j
    return t, e


_MODAL = ("G90", "G91", "M82", "M83", "G92", "G20", "G21")


def print_phase_lines(s: Session) -> list[str] | None:
    """The lines from the first extruding move on, preceded by the modal commands before it
    (positioning modes, G92), so the planner starts in the same state."""
    if s.print_t0_s is None:
        return None
    idx = next((i for i, (_ts, ta) in enumerate(s.line_t_s) if ta >= s.print_t0_s - 1e-6), None)
    if idx is None:
        return None
    pre = [ln for ln in s.gcode_lines[:idx] if ln.split(";")[0].strip()[:3].upper() in _MODAL]
    return pre + s.gcode_lines[idx:]


def time_scale_factor(sessions: list[Session], machine: FdmMachine) -> tuple[float, float]:
    """Real print-phase duration (first extruding move acknowledged .. last line acknowledged)
    over the planner's time for the same lines; mean over sessions and its standard error."""
    ratios = []
    for s in sessions:
        lines = print_phase_lines(s)
        if not lines:
            continue
        res = analyze_lines(lines, machine, thermal=False)
        planned = sum(r.t1_s - r.t0_s for r in res.timeline if r.kind == "motion")
        homing = sum(
            ta - ts
            for (ts, ta), ln in zip(s.line_t_s, s.gcode_lines, strict=True)
            if ts >= s.print_t0_s and ln.split(";")[0].strip().upper().startswith("G28")
        )
        real = s.job_t1_s - s.print_t0_s - homing
        if planned > 0 and real > 0:
            ratios.append(real / planned)
    if not ratios:
        return 1.0, math.nan
    r = np.array(ratios)
    return float(r.mean()), float(r.std(ddof=1) / math.sqrt(r.size)) if r.size > 1 else math.nan


def _timeline_waits(res: GcodeResult) -> float:
    return sum(r.t1_s - r.t0_s for r in res.timeline if r.kind == "wait")


def _hold_power_w(res: GcodeResult, machine: FdmMachine) -> float:
    """Wall power at the end of the last heater wait (both heaters holding, steppers as then)."""
    waits = [r for r in res.timeline if r.kind == "wait"]
    if not waits:
        return 0.0
    r = waits[-1]
    el = machine.electrical
    p = el.p_electronics_w + r.fan * el.p_fans_w
    p += (
        machine.hotend.holding_duty(r.hotend_set_c) * machine.hotend.p_max_w
        if r.hotend_set_c > 0
        else 0
    )
    p += machine.bed.holding_duty(r.bed_set_c) * machine.bed.p_max_w if r.bed_set_c > 0 else 0
    return p / el.psu_efficiency


def homing_time_s(sessions: list[Session]) -> float | None:
    """Mean measured G28 duration (sent to acknowledged), None when no session homed."""
    d = [x for s in sessions for x in s.homing_s]
    return float(np.mean(d)) if d else None


def calibrate_sessions(
    sessions: list[Session], base: FdmMachine, fix: dict[str, float] | None = None
) -> tuple[FitResult, FdmMachine]:
    """Fit the thermal/electrical parameters, then homing time and the time scale (with the
    fitted machine), and return the fit and the calibrated machine."""
    fit = fit_sessions(sessions, base, fix=fix)
    fit.homing_s = homing_time_s(sessions)
    cm = calibrated_machine(base, fit)
    fit.time_scale, fit.time_scale_stderr = time_scale_factor(sessions, cm)
    fit.wait_extra_s = wait_extra_s(sessions, cm)
    return fit, calibrated_machine(base, fit)


def _n_waits(lines: list[str]) -> int:
    return sum(1 for ln in lines if ln.split(";")[0].strip()[:4].upper() in ("M109", "M190"))


def wait_extra_s(sessions: list[Session], machine: FdmMachine) -> float:
    """Mean seconds a real M109/M190 lasts beyond the ideal-control heat-up of the timeline:
    the firmware's residency time (Marlin TEMP_RESIDENCY_TIME, TEMP_WINDOW) and the slower
    PID approach inside its functional range, which the timeline does not model."""
    extra, n = 0.0, 0
    for s in sessions:
        k = _n_waits(s.gcode_lines)
        if not k:
            continue
        res = analyze_lines(s.gcode_lines, machine)
        extra += s.waits_s - _timeline_waits(res)
        n += k
    return max(0.0, extra / n) if n else 0.0


def predict_session(s: Session, machine: FdmMachine, time_scale: float | None = None) -> Prediction:
    """Energy and duration of ``s``'s job predicted from its G-code; ``time_scale`` defaults
    to the machine's (1 for an uncalibrated profile)."""
    time_scale = machine.time_scale if time_scale is None else time_scale
    res = analyze_lines(s.gcode_lines, machine)
    t_motion, e_motion = _non_wait(res)
    t_pred = res.time_s + (time_scale - 1.0) * t_motion
    e_pred = res.energy_j + (time_scale - 1.0) * e_motion
    # waits last longer than ideal control by the calibrated extra; the heaters then hold
    n_w = _n_waits(s.gcode_lines)
    if n_w and machine.wait_extra_s > 0:
        t_pred += n_w * machine.wait_extra_s
        e_pred += n_w * machine.wait_extra_s * _hold_power_w(res, machine)
    return Prediction(
        session=s.name,
        energy_kwh_measured=s.job_energy_j / 3.6e6,
        energy_kwh_predicted=e_pred / 3.6e6,
        time_s_measured=s.job_time_s,
        time_s_predicted=t_pred,
    )
