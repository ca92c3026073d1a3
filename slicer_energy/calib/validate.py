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
    """(seconds, joules) of the timeline outside heater waits (what the time scale scales)."""
    t = e = 0.0
    for r in res.timeline:
        if r.kind != "wait":
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
        real = s.job_t1_s - s.print_t0_s
        if res.time_s > 0 and real > 0:
            ratios.append(real / res.time_s)
    if not ratios:
        return 1.0, math.nan
    r = np.array(ratios)
    return float(r.mean()), float(r.std(ddof=1) / math.sqrt(r.size)) if r.size > 1 else math.nan


def _timeline_waits(res: GcodeResult) -> float:
    return sum(r.t1_s - r.t0_s for r in res.timeline if r.kind == "wait")


def predict_session(s: Session, machine: FdmMachine, time_scale: float = 1.0) -> Prediction:
    res = analyze_lines(s.gcode_lines, machine)
    t_motion, e_motion = _non_wait(res)
    t_pred = res.time_s + (time_scale - 1.0) * t_motion
    e_pred = res.energy_j + (time_scale - 1.0) * e_motion
    return Prediction(
        session=s.name,
        energy_kwh_measured=s.job_energy_j / 3.6e6,
        energy_kwh_predicted=e_pred / 3.6e6,
        time_s_measured=s.job_time_s,
        time_s_predicted=t_pred,
    )
