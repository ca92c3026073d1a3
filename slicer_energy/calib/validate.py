"""Predict a session's job (heat-up + print) from its G-code and compare with the meter.

The G-code is the one the session actually sent (from ``serial.log``), planned by the
G-code planner and integrated by the one thermal timeline (``thermal.Timeline``, driven by
``gcode.analyze``) with the calibrated machine, so a held-out check exercises exactly what
``gcode --profile`` and ``predict --profile`` will compute. The planner's motion time is
multiplied by the fitted time-scale factor (real machine / planner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..gcode.analyze import GcodeResult, analyze_file
from ..machine import FdmMachine
from .fit import FitResult, calibrated_machine, fit_sessions
from .inputs.session import Session, require_heater_output


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
    """Plan a session's lines as the ``gcode`` command plans a file (timeline kept)."""
    return analyze_file(lines, machine, mode=mode, thermal=thermal, timeline=True)


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


def _uncorrected(machine: FdmMachine) -> FdmMachine:
    """The machine without calibrated timing corrections: what they are measured against."""
    return replace(machine, time_scale=1.0, wait_extra_s=0.0)


def time_scale_factor(sessions: list[Session], machine: FdmMachine) -> tuple[float, float]:
    """Real print-phase duration (first extruding move acknowledged .. last line acknowledged)
    over the planner's time for the same lines; mean over sessions and its standard error."""
    machine = _uncorrected(machine)
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


def homing_time_s(sessions: list[Session]) -> float | None:
    """Mean measured G28 duration (sent to acknowledged), None when no session homed."""
    d = [x for s in sessions for x in s.homing_s]
    return float(np.mean(d)) if d else None


def calibrate_sessions(
    sessions: list[Session], base: FdmMachine, fix: dict[str, float] | None = None
) -> tuple[FitResult, FdmMachine]:
    """Fit the thermal/electrical parameters, then homing time and the time scale (with the
    fitted machine), and return the fit and the calibrated machine."""
    for s in sessions:
        if s.duty_known:  # a plug-only session (OctoPrint log + plug CSV) has none by design
            require_heater_output(s)
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
    machine = _uncorrected(machine)
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
    """Energy and duration of ``s``'s job predicted from its G-code by the ``gcode`` timeline,
    which applies the machine's calibrated time scale and wait overhead; ``time_scale``
    overrides the machine's."""
    if time_scale is not None:
        machine = replace(machine, time_scale=time_scale)
    res = analyze_lines(s.gcode_lines, machine)
    t_pred, e_pred = res.time_s, res.energy_j
    return Prediction(
        session=s.name,
        energy_kwh_measured=s.job_energy_j / 3.6e6,
        energy_kwh_predicted=e_pred / 3.6e6,
        time_s_measured=s.job_time_s,
        time_s_predicted=t_pred,
    )
