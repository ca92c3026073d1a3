"""Calibrate from a bare power trace plus the G-code that was printed (no heater PWM).

For meters that only log watts (PZEM-017 on the 24 V side, smart plugs) the heater duty is
unknown, so the model is the G-code thermal timeline itself: the timeline's rows (motion
times, set points, fan) are computed once by :func:`slicer_energy.gcode.analyze.analyze_file`
and replayed with trial parameters (:func:`replay`); the fit matches the measured cumulative
energy curve and the job duration. Heater switches (``bed``/``hotend`` off) describe runs in
which a heater was disabled although the G-code set it.
"""

from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from ..errors import CalibrationError
from ..gcode.analyze import TimelineRow, analyze_file
from ..machine import FdmMachine
from ..thermal import heater_interval


@dataclass
class PowerTrace:
    path: str
    t_s: np.ndarray
    power_w: np.ndarray

    def energy_j(self) -> float:
        return float(np.sum(0.5 * (self.power_w[1:] + self.power_w[:-1]) * np.diff(self.t_s)))


def read_power_trace(path: str | Path) -> PowerTrace:
    """CSV with a power column (``W``/``Power (W)``/``power_w``) and either a per-sample
    interval column (``Delta Time (s)``) or a timestamp (ISO or Unix seconds)."""
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{path}: power trace not found")
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 4:
        raise CalibrationError(f"{path}: fewer than 3 data rows")
    head = [h.strip().lower() for h in rows[0]]

    def col(*names: str) -> int | None:
        for n in names:
            for i, h in enumerate(head):
                if h == n or h.startswith(n):
                    return i
        return None

    ip = col("power (w)", "power_w", "power", "w", "apower")
    idt = col("delta time (s)", "delta_s", "interval_s")
    its = col("timestamp", "t_s", "time")
    if ip is None or (idt is None and its is None):
        raise CalibrationError(
            f"{path}: need a power column and a time or interval column; header is {rows[0]}"
        )
    p, t = [], []
    acc = 0.0
    for ln, r in enumerate(rows[1:], start=2):
        try:
            pw = float(r[ip])
            if idt is not None:
                acc += float(r[idt])
                tt = acc
            else:
                s = r[its].strip()
                try:
                    tt = float(s)
                except ValueError:
                    tt = _dt.datetime.fromisoformat(s).timestamp()
        except (ValueError, IndexError) as exc:
            raise CalibrationError(f"{path}: line {ln}: {exc}") from None
        p.append(pw)
        t.append(tt)
    ta = np.array(t)
    if np.any(np.diff(ta) < 0):
        i = int(np.argmax(np.diff(ta) < 0))
        raise CalibrationError(f"{path}: time goes backwards at line {i + 3}")
    return PowerTrace(str(path), ta - ta[0], np.array(p))


def job_window(tr: PowerTrace, rise_w: float = 8.0) -> tuple[float, float]:
    """Job start (first sample ``rise_w`` above the idle level of the first samples; the first
    sample if the trace starts hot) to the last sample above the idle level at the end (the
    printer's own idle tail trimmed)."""
    p, t = tr.power_w, tr.t_s
    hi = np.nonzero(p > float(np.median(p[:5])) + rise_w)[0]
    i0 = int(hi[0]) if hi.size else 0
    idle = float(np.median(p[-20:]))
    active = np.nonzero(p > idle + max(3.0, 0.15 * idle))[0]
    i1 = int(active[-1]) if active.size else p.size - 1
    return float(t[max(i0 - 1, 0)]), float(t[i1])


def replay(
    rows: list[TimelineRow],
    m: FdmMachine,
    *,
    bed_on: bool = True,
    hotend_on: bool = True,
    time_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (time, wall energy) at each row end for machine ``m``.

    Motion rows take ``time_scale`` × their planned time; heater waits are recomputed for
    ``m`` (the heater below its set point is waited for, bed first as slicers order them).
    """
    th, tb = m.hotend.t_amb_c, m.bed.t_amb_c
    el = m.electrical
    t = e = 0.0
    ts, es = [0.0], [0.0]
    steppers = False
    for r in rows:
        hs = r.hotend_set_c if hotend_on else 0.0
        bs = r.bed_set_c if bed_on else 0.0
        dt = r.t1_s - r.t0_s
        if r.kind == "motion":
            dt *= time_scale
            steppers = True
        elif r.kind == "homing":
            steppers = True
        elif r.kind == "wait":
            if bs > 0 and tb < bs - 0.5:
                dt = m.bed.time_to_reach_s(tb, bs)
            elif hs > 0 and th < hs - 0.5:
                dt = m.hotend.time_to_reach_s(th, hs)
            else:
                dt = 0.0
            if not np.isfinite(dt):
                dt = 3600.0
        th, eh = heater_interval(m.hotend, th, hs, dt)
        tb, eb = heater_interval(m.bed, tb, bs, dt)
        moving = r.kind in ("motion", "homing", "leveling")
        base = el.p_electronics_w + r.fan * el.p_fans_w
        if steppers:
            base += el.p_steppers_enabled_w + (el.p_steppers_moving_w if moving else 0.0)
        e += (eh + eb + base * dt) / el.psu_efficiency
        t += dt
        ts.append(t)
        es.append(e)
    return np.array(ts), np.array(es)


@dataclass
class TraceRun:
    name: str
    trace: PowerTrace
    rows: list[TimelineRow]
    bed_on: bool = True
    hotend_on: bool = True

    @property
    def window(self) -> tuple[float, float]:
        return job_window(self.trace)

    def measured(self, n: int = 40) -> tuple[np.ndarray, np.ndarray, float]:
        """Cumulative energy at ``n`` fractions of the job, and the job duration."""
        a, b = self.window
        t, p = self.trace.t_s, self.trace.power_w
        cum = np.concatenate(([0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(t))))
        fr = np.linspace(0.0, 1.0, n + 1)[1:]
        tq = a + fr * (b - a)
        e = np.interp(tq, t, cum) - np.interp(a, t, cum)
        return fr, e, b - a


def timeline_rows(gcode: str | Path, m: FdmMachine) -> list[TimelineRow]:
    return analyze_file(gcode, m, timeline=True).timeline


FIT_KEYS = (
    "hotend.p_max_w",
    "hotend.r_k_per_w",
    "hotend.c_j_per_k",
    "bed.p_max_w",
    "bed.r_k_per_w",
    "bed.c_j_per_k",
    "electrical.p_electronics_w",
    "time_scale",
)


def _apply(m: FdmMachine, x: dict[str, float]) -> FdmMachine:
    h = replace(m.hotend, **{k[7:]: v for k, v in x.items() if k.startswith("hotend.")})
    b = replace(m.bed, **{k[4:]: v for k, v in x.items() if k.startswith("bed.")})
    el = replace(m.electrical, **{k[11:]: v for k, v in x.items() if k.startswith("electrical.")})
    return replace(m, hotend=h, bed=b, electrical=el, time_scale=x.get("time_scale", 1.0))


def fit_traces(runs: list[TraceRun], m: FdmMachine) -> tuple[FdmMachine, dict[str, float]]:
    """Fit heater P/R/C, base power and the time scale to whole-run energy curves."""
    x0 = np.array(
        [
            m.hotend.p_max_w,
            m.hotend.r_k_per_w,
            m.hotend.c_j_per_k,
            m.bed.p_max_w,
            m.bed.r_k_per_w,
            m.bed.c_j_per_k,
            m.electrical.p_electronics_w,
            1.0,
        ]
    )
    lo, hi = x0 * 0.1, x0 * 5.0
    lo[-1], hi[-1] = 0.5, 2.0
    meas = [r.measured() for r in runs]

    def resid(x: np.ndarray) -> np.ndarray:
        mm = _apply(m, dict(zip(FIT_KEYS, x, strict=True)))
        out = []
        for r, (fr, e, dur) in zip(runs, meas, strict=True):
            t, ce = replay(r.rows, mm, bed_on=r.bed_on, hotend_on=r.hotend_on, time_scale=x[-1])
            tq = fr * t[-1]
            out.append((np.interp(tq, t, ce) - e) / e[-1])
            out.append(np.array([(t[-1] - dur) / dur]))
        prior = (x - x0) / (0.5 * np.abs(x0))
        return np.concatenate([*out, 0.05 * prior])

    res = least_squares(
        resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.05, x_scale=np.abs(x0)
    )
    vals = dict(zip(FIT_KEYS, res.x, strict=True))
    return _apply(m, vals), vals


def predict_run(r: TraceRun, m: FdmMachine) -> tuple[float, float]:
    """(energy J, duration s) of the run's job with machine ``m``."""
    t, ce = replay(r.rows, m, bed_on=r.bed_on, hotend_on=r.hotend_on, time_scale=m.time_scale)
    return float(ce[-1]), float(t[-1])
