"""Calibrate from a bare power trace plus the G-code that was printed (no heater PWM).

For meters that only log watts (PZEM-017 on the 24 V side, smart plugs) the heater duty is
unknown, so the model is the G-code thermal timeline itself: the timeline's rows (motion
times, set points, fan) are computed once by :func:`slicer_energy.gcode.analyze.analyze_file`
and replayed with trial parameters (:func:`replay_parts`); the fit matches the measured
cumulative energy curves and the job duration.

What a bare trace tells apart without a model (meter gaps, the job window, interruptions,
the bed's share of each reading) is read by :mod:`.inputs.trace`; the interruptions are
replayed by their timing: heaters off for that long, then both back to their set points, and
the bed's on-level is its maximum power.

Run conditions (which heaters were switched on, a start with hot heaters, a changed bed
such as an insulated underside) are stated per run (:class:`TraceRun`); a changed bed gets
its own loss factor that only runs with that condition determine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from ..gcode.analyze import analyze_file
from ..machine import FdmMachine
from ..thermal import ElectricalModel, TimelineRow, base_loads_w, heater_interval, wait_s
from .fit import IDENTIFIED_SHRINK, ParamResult
from .inputs.trace import Interruption, PowerTrace, bed_power_w, interruptions, job_window


@dataclass
class TraceRun:
    """One metered print: its trace, the timeline of the G-code it printed, and the run's
    stated conditions."""

    name: str
    trace: PowerTrace
    rows: list[TimelineRow]
    bed_on: bool = True
    hotend_on: bool = True
    start_hot: bool = False  # heaters already at their set points at the job start
    bed_condition: str | None = None  # e.g. "insulated": its own bed loss factor
    filament_g: float = 0.0  # filament the G-code extrudes (heated by the hotend)
    # no reading above board + this for HEATERS_OFF_MIN_S while a heater should be on: the
    # heaters were off (assumption: above the base loads, below the hotend's PID hold)
    heaters_off_w: float = 20.0
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def window(self) -> tuple[float, float]:
        if "window" not in self._cache:
            self._cache["window"] = job_window(self.trace)
        return self._cache["window"]

    def interruptions(self) -> list[Interruption]:
        if "int" not in self._cache:
            heaters = self.bed_on or self.hotend_on
            self._cache["int"] = interruptions(self.trace, self.window, self.heaters_off_w, heaters)
        return self._cache["int"]

    def bed_split(self, threshold_w: float) -> np.ndarray | None:
        """Per-reading bed power (None when the bed was off or never switched on)."""
        if not self.bed_on:
            return None
        key = ("bed", round(threshold_w, 3))
        if key not in self._cache:
            b = bed_power_w(self.trace, threshold_w)
            self._cache[key] = b if np.count_nonzero(b) >= 10 else None
        return self._cache[key]

    def measured(
        self, n: int = 60, bed_threshold_w: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
        """Cumulative total and bed energy at ``n`` fractions of the job window, and the
        window's length."""
        a, b = self.window
        t = self.trace.t_s
        cum = self.trace.cumulative_j()
        fr = np.linspace(0.0, 1.0, n + 1)[1:]
        tq = a + fr * (b - a)
        e = np.interp(tq, t, cum) - np.interp(a, t, cum)
        eb = None
        if bed_threshold_w is not None:
            bw = self.bed_split(bed_threshold_w)
            if bw is not None:
                cb = np.concatenate(([0.0], np.cumsum(0.5 * (bw[1:] + bw[:-1]) * np.diff(t))))
                eb = np.interp(tq, t, cb) - np.interp(a, t, cb)
        return fr, e, eb, b - a

    def energy_j(self) -> float:
        a, b = self.window
        cum = self.trace.cumulative_j()
        return float(np.interp(b, self.trace.t_s, cum) - np.interp(a, self.trace.t_s, cum))


def timeline(gcode: str | Path, m: FdmMachine) -> tuple[list[TimelineRow], float]:
    """The G-code's timeline rows and the filament mass it extrudes (g)."""
    res = analyze_file(gcode, m, timeline=True)
    return res.timeline, m.filament.mass_g(res.filament_mm)


class _Replay:
    """The replay's state: heater temperatures, model time and cumulative DC-side energy
    per part (base, hotend, bed) at each interval's end."""

    def __init__(self, m: FdmMachine, th: float, tb: float) -> None:
        self.m, self.th, self.tb, self.t = m, th, tb, 0.0
        self.acc = np.zeros(3)
        self.ts, self.es = [0.0], [self.acc.copy()]

    def step(self, dt: float, hs: float, bs: float, fan: float, flow: float, base: float) -> None:
        """``dt`` seconds under ideal control towards ``hs``/``bs`` with ``base`` W at the
        board (:func:`base_w`)."""
        self.th, eh = heater_interval(self.m.hotend, self.th, hs, dt, flow, fan)
        self.tb, eb = heater_interval(self.m.bed, self.tb, bs, dt)
        self.acc[0] += base * dt
        self.acc[1] += eh
        self.acc[2] += eb
        self.t += dt
        self.ts.append(self.t)
        self.es.append(self.acc.copy())

    def heat_up_s(self, hs: float, bs: float) -> float:
        """A slicer's start: wait for the bed, then for whatever the hotend (heating at full
        power meanwhile) still lacks. Raises on a set point the heaters cannot reach."""
        hm = self.m.hotend
        dt = wait_s(self.m.bed, self.tb, bs, name="bed")
        if hs > 0:
            th_after = hm.step(self.th, 1.0, dt) if self.th < hs else self.th
            dt += wait_s(hm, th_after, hs, name="hotend")
        return dt

    def pause(self, dur: float, st: bool, hs: float, bs: float) -> None:
        """Heaters off for ``dur`` (board, plus steppers if ``st``), back to the set points."""
        el = self.m.electrical
        self.step(dur, 0.0, 0.0, 0.0, 0.0, base_w(el, st, False, 0.0))
        reheat = max(
            wait_s(self.m.bed, self.tb, bs, band_k=0.0, name="bed"),
            wait_s(self.m.hotend, self.th, hs, band_k=0.0, name="hotend"),
        )
        if reheat > 0:
            self.step(reheat, hs, bs, 0.0, 0.0, base_w(el, True, False, 0.0))


def base_w(el: ElectricalModel, steppers: bool, moving: bool, fan: float) -> float:
    """The board's non-heater load (:func:`thermal.base_loads_w`, summed), W."""
    p_el, p_st, p_fan = base_loads_w(el, steppers, moving, fan)
    return p_el + p_fan + p_st


def replay_parts(
    rows: list[TimelineRow],
    m: FdmMachine,
    *,
    bed_on: bool = True,
    hotend_on: bool = True,
    time_scale: float = 1.0,
    start_hot: bool = False,
    filament_g: float = 0.0,
    pauses: list[tuple[float, float, bool]] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative time and DC-side energy per part (columns base, hotend, bed) at each row end.

    The equations are :mod:`slicer_energy.thermal`'s (heater intervals, waits, base loads);
    what is the trace's own is the run's conditions. Motion rows take ``time_scale`` × their
    planned time; heater waits are recomputed for ``m`` (bed, then hotend, as slicers order
    them), and a set point ``m`` cannot reach raises as the G-code timeline does. The
    filament's heating is spread evenly over the motion rows (exact for the energy while
    the hotend holds its set point); the part fan adds its loss to the hotend. ``pauses``
    are ``(at_s, duration_s, steppers)``: at model time ``at_s`` both heaters go off for
    ``duration_s`` (board, plus steppers if set), then heat back to their set points before
    the job goes on.
    """
    hm, bm, el = m.hotend, m.bed, m.electrical
    th, tb = hm.t_amb_c, bm.t_amb_c
    if start_hot:
        th = max((r.hotend_set_c for r in rows), default=th) if hotend_on else th
        tb = max((r.bed_set_c for r in rows), default=tb) if bed_on else tb
    motion_s = sum(r.t1_s - r.t0_s for r in rows if r.kind == "motion") * time_scale
    g_flow = filament_g * m.filament.cp_j_per_gk / motion_s if motion_s > 0 else 0.0
    rp = _Replay(m, th, tb)
    steppers = False
    todo = sorted(pauses)
    for r in rows:
        hs = r.hotend_set_c if hotend_on else 0.0
        bs = r.bed_set_c if bed_on else 0.0
        dt = r.t1_s - r.t0_s
        flow = 0.0
        if r.kind == "motion":
            dt *= time_scale
            steppers = True
            flow = g_flow
        elif r.kind == "homing":
            steppers = True
        elif r.kind == "wait":
            dt = rp.heat_up_s(hs, bs)
        moving = r.kind in ("motion", "homing", "leveling")
        base = base_w(el, steppers, moving, r.fan)
        # a pause falling inside this row splits it where it falls (the result stays
        # continuous in the parameters, which the Jacobian needs)
        while todo and rp.t + dt > todo[0][0]:
            at, dur, st = todo.pop(0)
            part = max(0.0, at - rp.t)
            rp.step(part, hs, bs, r.fan, flow, base)
            dt -= part
            rp.pause(dur, st, hs, bs)
        rp.step(dt, hs, bs, r.fan, flow, base)
    return np.array(rp.ts), np.array(rp.es) / el.psu_efficiency


# ------------------------------------------------------------------------------ fitting
FIT_KEYS = (
    "hotend.p_max_w",
    "hotend.r_k_per_w",
    "hotend.c_j_per_k",
    "hotend.g_fan_w_per_k",
    "bed.p_max_w",
    "bed.r_k_per_w",
    "bed.c_j_per_k",
    "electrical.p_electronics_w",
    "electrical.p_steppers_enabled_w",
    "electrical.p_steppers_moving_w",
    "electrical.p_fans_w",
    "time_scale",
)
# RepRapFirmware M303 on a Prusa MK3S hotend (corpus power/notes/...duet3.csv): gain 830.5 K
# with the part fan off, 314.3 K at 100 %; the fan's extra loss is P·(1/314.3 − 1/830.5).
MK3S_FAN_LOSS_PER_W = 1.0 / 314.3 - 1.0 / 830.5
SIGMA_CURVE = 0.01  # assumption: the model's cumulative energy is good to ~1 % of the run
SIGMA_DURATION = 0.03  # assumption: a run's duration is matched to ~3 %
SIGMA_LEVEL = 0.03  # the bed's on-level: ~3 % (mains/heater resistance drift)
PRIOR_REL = 0.5
REACH_MARGIN_K = 10.0
SIGMA_BASE_LEVEL_W = 0.5  # assumption: board / board + stepper level read to ~0.5 W


def bed_condition_key(cond: str) -> str:
    return f"bed.r_factor.{cond}"


def _apply(m: FdmMachine, x: dict[str, float], bed_condition: str | None = None) -> FdmMachine:
    h = replace(m.hotend, **{k[7:]: v for k, v in x.items() if k.startswith("hotend.")})
    bk = {k[4:]: v for k, v in x.items() if k.startswith("bed.") and "." not in k[4:]}
    if bed_condition is not None:
        bk["r_k_per_w"] = bk.get("r_k_per_w", m.bed.r_k_per_w) * x.get(
            bed_condition_key(bed_condition), 1.0
        )
    b = replace(m.bed, **bk)
    el = replace(m.electrical, **{k[11:]: v for k, v in x.items() if k.startswith("electrical.")})
    return replace(m, hotend=h, bed=b, electrical=el, time_scale=x.get("time_scale", 1.0))


@dataclass
class TraceFit:
    """Fitted values (dict of :class:`ParamResult`), the calibrated machine, and notes."""

    params: dict[str, ParamResult]
    machine: FdmMachine
    runs: list[str]
    notes: list[str]
    rms_curve: float  # RMS cumulative-energy residual, fraction of each run's energy

    def values(self) -> dict[str, float]:
        return {k: p.value for k, p in self.params.items()}

    def machine_for(self, r: TraceRun) -> FdmMachine:
        return _apply(self.machine, self.values(), r.bed_condition)


def _prior(m: FdmMachine, key: str) -> tuple[float, float, float, float]:
    """(prior value, prior σ, lower bound, upper bound)."""
    if key.startswith("time_scale"):
        return 1.0, 0.3, 0.5, 2.0
    if key == "hotend.g_fan_w_per_k":
        v = m.hotend.p_max_w * MK3S_FAN_LOSS_PER_W
        return v, PRIOR_REL * v, 0.0, 10.0 * v
    if key.startswith("bed.r_factor."):
        return 1.0, PRIOR_REL, 0.1, 10.0
    grp, name = key.split(".")
    v = float(getattr(getattr(m, grp), name))
    sig = max(PRIOR_REL * abs(v), 0.5)
    if grp == "electrical":
        return v, sig, 0.0, max(10.0 * v, 50.0)
    return v, sig, 0.1 * v, 10.0 * v


def bed_threshold_w(m: FdmMachine, idle_w: float) -> float:
    """Readings above this are "bed on": board + steppers + full hotend + half the bed."""
    el = m.electrical
    return (
        idle_w
        + el.p_steppers_enabled_w
        + el.p_steppers_moving_w
        + el.p_fans_w
        + m.hotend.p_max_w
        + 0.5 * m.bed.p_max_w
    ) / el.psu_efficiency


def _pauses(r: TraceRun) -> list[tuple[float, float, bool]]:
    a, _b = r.window
    return [(i.t0_s - a, i.dur_s, i.steppers) for i in r.interruptions()]


def run_model(r: TraceRun, m: FdmMachine) -> tuple[np.ndarray, np.ndarray]:
    """Replay ``r``'s G-code with ``m`` under ``r``'s conditions and interruptions."""
    return replay_parts(
        r.rows,
        m,
        bed_on=r.bed_on,
        hotend_on=r.hotend_on,
        time_scale=m.time_scale,
        start_hot=r.start_hot,
        filament_g=r.filament_g,
        pauses=_pauses(r),
    )


def fit_traces(  # noqa: C901, PLR0915 - one least-squares problem assembled in place; split planned (issue 15 item 4)
    runs: list[TraceRun],
    m: FdmMachine,
    *,
    fix: dict[str, float] | None = None,
    conditions: tuple[str, ...] = (),
) -> TraceFit:
    """Fit heater P/R/C (+ the hotend's part-fan loss), the base loads and the time scale to
    the runs' cumulative energy curves (total and, for a bang-bang bed, the bed's share),
    their durations and the bed's on-level, with priors from ``m``.

    A parameter whose standard error does not fall below half its prior σ is reported as
    not identified; the values are the posterior (maximum a posteriori) ones, which stay at
    the prior along directions the data do not constrain (resetting single parameters of a
    group whose sum *is* determined, such as the base loads, would break the sum).
    ``conditions`` names bed conditions to report even when no fitted run has them (e.g. the
    held-out run's), so that they show as not identified."""
    fix = dict(fix or {})
    conds = sorted({r.bed_condition for r in runs if r.bed_condition} | set(conditions))
    # Each fitted run gets its own time scale (a nuisance parameter: real print times of the
    # same G-code scatter from run to run), so that a run's duration never masquerades as
    # power; the machine's time scale is their mean, its stderr their scatter.
    rkeys = [f"time_scale.{i}" for i in range(len(runs))]
    keys = [
        k
        for k in (*FIT_KEYS, *(bed_condition_key(c) for c in conds), *rkeys)
        if k not in fix and k != "time_scale"
    ]
    pri = np.array([_prior(m, k) for k in keys])
    x0, sig, lo, hi = pri[:, 0], pri[:, 1], pri[:, 2], pri[:, 3]
    idle = [r.trace.idle_w() for r in runs]
    thr = [bed_threshold_w(m, i) for i in idle]
    meas = [r.measured(60, th) for r, th in zip(runs, thr, strict=True)]
    levels = []
    for r, th in zip(runs, thr, strict=True):
        bw = r.bed_split(th)
        levels.append(float(np.median(bw[bw > 0])) if bw is not None else None)

    # Levels read straight off the fitted runs: the board alone (idle interruptions) and the
    # board with the steppers held (heater-off interruptions), median reading of each.
    base_levels: list[tuple[bool, float]] = []
    for r in runs:
        t, p = r.trace.t_s, r.trace.power_w
        for i in r.interruptions():
            inner = (t > i.t0_s) & (t < i.t1_s)
            if np.count_nonzero(inner) >= 5:
                base_levels.append((i.steppers, float(np.median(p[inner]))))

    def machine_of(x: np.ndarray, cond: str | None) -> FdmMachine:
        d = {k: v for k, v in zip(keys, x, strict=True) if k not in rkeys}
        d.update(fix)
        return _apply(m, d, cond)

    def curves(x: np.ndarray) -> list[np.ndarray]:
        out = []
        d = dict(zip(keys, x, strict=True))
        for i, (r, (fr, e, eb, dur), lev) in enumerate(zip(runs, meas, levels, strict=True)):
            mm = replace(machine_of(x, r.bed_condition), time_scale=d[f"time_scale.{i}"])
            t, parts = run_model(r, mm)
            tq = fr * t[-1]
            tot = parts.sum(axis=1)
            out.append((np.interp(tq, t, tot) - e) / (e[-1] * SIGMA_CURVE))
            if eb is not None:
                out.append((np.interp(tq, t, parts[:, 2]) - eb) / (e[-1] * SIGMA_CURVE))
            out.append(np.array([(t[-1] - dur) / (dur * SIGMA_DURATION)]))
            if lev is not None:
                pb = mm.bed.p_max_w / mm.electrical.psu_efficiency
                out.append(np.array([(pb - lev) / (lev * SIGMA_LEVEL)]))
        return out

    set_h = max((r.hotend_set_c for run in runs for r in run.rows), default=0.0)
    set_b = max((r.bed_set_c for run in runs for r in run.rows), default=0.0)

    def reach(x: np.ndarray) -> np.ndarray:
        """The printers reached their set points: full power must hold at least set + 10 K
        (fan off); a soft wall, zero when met."""
        mm = machine_of(x, None)
        out = []
        for h, ts in ((mm.hotend, set_h), (mm.bed, set_b)):
            short = (ts + REACH_MARGIN_K) - h.max_temp_c() if ts > 0 else 0.0
            out.append(max(0.0, short) / 2.0)
        return np.array(out)

    def levels_resid(x: np.ndarray) -> np.ndarray:
        el = machine_of(x, None).electrical
        return np.array(
            [
                ((el.p_electronics_w + st * el.p_steppers_enabled_w) / el.psu_efficiency - lv)
                / SIGMA_BASE_LEVEL_W
                for st, lv in base_levels
            ]
        )

    def resid(x: np.ndarray) -> np.ndarray:
        return np.concatenate([*curves(x), levels_resid(x), reach(x), (x - x0) / sig])

    res = least_squares(
        resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=3.0, x_scale=sig, max_nfev=300
    )
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:  # pragma: no cover
        se = np.full(len(keys), np.nan)
    params: dict[str, ParamResult] = {}
    notes: list[str] = []
    for k, v, s, p0, ps in zip(keys, res.x, se, x0, sig, strict=True):
        ident = bool(s < IDENTIFIED_SHRINK * ps)
        if k in rkeys:
            params[k] = ParamResult(float(v), float(s), float(p0), float(ps), ident)
            continue
        params[k] = ParamResult(float(v), float(s), float(p0), float(ps), ident)
        if not ident:
            notes.append(
                f"{k}: not determined by these runs alone (σ {s:.3g} vs prior σ {ps:.3g}); "
                f"{v:.4g} rests on the prior {p0:.4g}"
            )
    for k, v in fix.items():
        params[k] = ParamResult(float(v), 0.0, float(v), 0.0, False)
    ts = np.array([params.pop(k).value for k in rkeys])
    ts_se = float(ts.std(ddof=1) / math.sqrt(ts.size)) if ts.size > 1 else math.nan
    params["time_scale"] = ParamResult(float(ts.mean()), ts_se, 1.0, 0.3, ts.size > 1)
    per_run = ", ".join(f"{r.name} {v:.3f}" for r, v in zip(runs, ts, strict=True))
    notes.append("time scale per run: " + per_run)
    cv = curves(res.x)
    rms = float(np.sqrt(np.mean(np.concatenate(cv) ** 2))) * SIGMA_CURVE
    mfit = _apply(m, {k: p.value for k, p in params.items()})
    return TraceFit(params, mfit, [r.name for r in runs], notes, rms)


def predict_run(r: TraceRun, fit: TraceFit | FdmMachine) -> tuple[float, float]:
    """(energy J, duration s) of the run's job, interruptions included."""
    m = fit.machine_for(r) if isinstance(fit, TraceFit) else fit
    t, parts = run_model(r, m)
    return float(parts[-1].sum()), float(t[-1])
