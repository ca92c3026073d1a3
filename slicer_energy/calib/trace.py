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

from ..gcode.analyze import analyze_file
from ..machine import FdmMachine
from ..thermal import SetPoints, Timeline, TimelineRow, wait_s
from .fit import ParamResult, judge, solve, unidentified_notes
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
    """:class:`thermal.Timeline` driven by a G-code's timeline rows under a run's conditions,
    with the cumulative time and wall energy per part (base, hotend, bed) after each interval."""

    def __init__(self, m: FdmMachine, bed_on: bool, hotend_on: bool) -> None:
        self.tl = Timeline(m)
        self.bed_on, self.hotend_on = bed_on, hotend_on
        self.ts, self.es = [0.0], [(0.0, 0.0, 0.0)]

    def set_points(self, r: TimelineRow) -> None:
        """The row's set points (a heater the run left off stays off) and fan; motion and
        homing switch the steppers on."""
        on = True if r.kind in ("motion", "homing") else None
        hs = r.hotend_set_c if self.hotend_on else 0.0
        bs = r.bed_set_c if self.bed_on else 0.0
        self.tl.apply(SetPoints(hotend_c=hs, bed_c=bs, fan=r.fan, steppers=on))

    def run(self, dt: float, kind: str, moving: bool, extruded_mm: float = 0.0) -> None:
        """:meth:`Timeline.advance`, then record the curves (also for an empty interval)."""
        self.tl.advance(dt, kind, moving, extruded_mm)
        c = self.tl.comp
        self.ts.append(self.tl.t)
        self.es.append((c["electronics"] + c["steppers"] + c["fans"], c["hotend"], c["bed"]))

    def heat_up_s(self) -> float:
        """A slicer's start: wait for the bed, then for whatever the hotend (heating at full
        power meanwhile) still lacks. Raises on a set point the heaters cannot reach."""
        tl, hm = self.tl, self.tl.m.hotend
        dt = wait_s(tl.m.bed, tl.bed_c, tl.bed_set, name="bed")
        if tl.he_set > 0:
            th_after = hm.step(tl.he_c, 1.0, dt) if tl.he_c < tl.he_set else tl.he_c
            dt += wait_s(hm, th_after, tl.he_set, name="hotend")
        return dt

    def pause(self, dur: float, steppers: bool) -> None:
        """Heaters off for ``dur`` (board, plus steppers if ``steppers``), then back to the
        set points with the steppers held; the fan and stepper state resume after it."""
        tl = self.tl
        state = SetPoints(tl.he_set, tl.bed_set, tl.fan, tl.steppers)
        tl.apply(SetPoints(0.0, 0.0, 0.0, steppers))
        self.run(dur, "dwell", False)
        reheat = max(
            wait_s(tl.m.bed, tl.bed_c, state.bed_c, band_k=0.0, name="bed"),
            wait_s(tl.m.hotend, tl.he_c, state.hotend_c, band_k=0.0, name="hotend"),
        )
        tl.apply(SetPoints(state.hotend_c, state.bed_c, 0.0, True))
        if reheat > 0:
            self.run(reheat, "wait", False)
        tl.apply(state)


def replay_parts(
    rows: list[TimelineRow],
    m: FdmMachine,
    *,
    bed_on: bool = True,
    hotend_on: bool = True,
    start_hot: bool = False,
    filament_g: float = 0.0,
    pauses: list[tuple[float, float, bool]] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative time and wall energy per part (columns base, hotend, bed) at each row end.

    The rows drive :class:`thermal.Timeline` (motion takes ``m.time_scale`` × its planned
    time); what is the trace's own is the run's conditions. Heater waits are recomputed for
    ``m`` (bed, then hotend, as slicers order them), and a set point ``m`` cannot reach
    raises as the G-code timeline does. The filament's heating is spread evenly over the
    motion rows (exact for the energy while the hotend holds its set point); the part fan
    adds its loss to the hotend. ``pauses`` are ``(at_s, duration_s, steppers)``: at model
    time ``at_s`` both heaters go off for ``duration_s`` (board, plus steppers if set), then
    heat back to their set points before the job goes on.
    """
    rp = _Replay(m, bed_on, hotend_on)
    if start_hot:
        if hotend_on:
            rp.tl.he_c = max((r.hotend_set_c for r in rows), default=rp.tl.he_c)
        if bed_on:
            rp.tl.bed_c = max((r.bed_set_c for r in rows), default=rp.tl.bed_c)
    motion_s = sum(r.t1_s - r.t0_s for r in rows if r.kind == "motion")
    mm_per_s = filament_g / m.filament.mass_g(1.0) / motion_s if motion_s > 0 else 0.0
    todo = sorted(pauses)
    for r in rows:
        rp.set_points(r)
        dt = rp.heat_up_s() if r.kind == "wait" else r.t1_s - r.t0_s
        scale = rp.tl.time_scale if r.kind == "motion" else 1.0
        flow = mm_per_s if r.kind == "motion" else 0.0
        moving = r.kind in ("motion", "homing", "leveling")
        # a pause falling inside this row splits it where it falls (the result stays
        # continuous in the parameters, which the Jacobian needs)
        while todo and rp.tl.t + dt * scale > todo[0][0]:
            at, dur, st = todo.pop(0)
            part = max(0.0, at - rp.tl.t) / scale
            rp.run(part, r.kind, moving, flow * part)
            dt -= part
            rp.pause(dur, st)
        rp.run(dt, r.kind, moving, flow * dt)
    return np.array(rp.ts), np.array(rp.es)


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
        start_hot=r.start_hot,
        filament_g=r.filament_g,
        pauses=_pauses(r),
    )


class _TraceProblem:
    """The residuals of :func:`fit_traces`: each run's cumulative energy curves (total and
    the bed's share), duration and bed on-level, the base levels read off interruptions,
    the set points' reachability and the priors."""

    def __init__(
        self,
        runs: list[TraceRun],
        m: FdmMachine,
        fix: dict[str, float],
        conditions: tuple[str, ...],
    ) -> None:
        self.runs, self.m, self.fix = runs, m, fix
        conds = sorted({r.bed_condition for r in runs if r.bed_condition} | set(conditions))
        # Each fitted run gets its own time scale (a nuisance parameter: real print times of
        # the same G-code scatter from run to run), so that a run's duration never masquerades
        # as power; the machine's time scale is their mean, its stderr their scatter.
        self.rkeys = [f"time_scale.{i}" for i in range(len(runs))]
        self.keys = [
            k
            for k in (*FIT_KEYS, *(bed_condition_key(c) for c in conds), *self.rkeys)
            if k not in fix and k != "time_scale"
        ]
        pri = np.array([_prior(m, k) for k in self.keys])
        self.x0, self.sig, self.lo, self.hi = pri[:, 0], pri[:, 1], pri[:, 2], pri[:, 3]
        thr = [bed_threshold_w(m, r.trace.idle_w()) for r in runs]
        self.meas = [r.measured(60, th) for r, th in zip(runs, thr, strict=True)]
        self.levels = []
        for r, th in zip(runs, thr, strict=True):
            bw = r.bed_split(th)
            self.levels.append(float(np.median(bw[bw > 0])) if bw is not None else None)
        self.base_levels = _base_levels(runs)
        self.set_h = max((r.hotend_set_c for run in runs for r in run.rows), default=0.0)
        self.set_b = max((r.bed_set_c for run in runs for r in run.rows), default=0.0)

    def machine_of(self, x: np.ndarray, cond: str | None) -> FdmMachine:
        d = {k: v for k, v in zip(self.keys, x, strict=True) if k not in self.rkeys}
        d.update(self.fix)
        return _apply(self.m, d, cond)

    def curves(self, x: np.ndarray) -> list[np.ndarray]:
        """Per run: the cumulative energy residuals, total and bed, then the duration's and
        the bed on-level's."""
        out = []
        d = dict(zip(self.keys, x, strict=True))
        for i, (r, (fr, e, eb, dur), lev) in enumerate(
            zip(self.runs, self.meas, self.levels, strict=True)
        ):
            mm = replace(self.machine_of(x, r.bed_condition), time_scale=d[f"time_scale.{i}"])
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

    def reach(self, x: np.ndarray) -> np.ndarray:
        """The printers reached their set points: full power must hold at least set + 10 K
        (fan off); a soft wall, zero when met."""
        mm = self.machine_of(x, None)
        out = []
        for h, ts in ((mm.hotend, self.set_h), (mm.bed, self.set_b)):
            short = (ts + REACH_MARGIN_K) - h.max_temp_c() if ts > 0 else 0.0
            out.append(max(0.0, short) / 2.0)
        return np.array(out)

    def levels_resid(self, x: np.ndarray) -> np.ndarray:
        el = self.machine_of(x, None).electrical
        return np.array(
            [
                ((el.p_electronics_w + st * el.p_steppers_enabled_w) / el.psu_efficiency - lv)
                / SIGMA_BASE_LEVEL_W
                for st, lv in self.base_levels
            ]
        )

    def resid(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [*self.curves(x), self.levels_resid(x), self.reach(x), (x - self.x0) / self.sig]
        )


def _base_levels(runs: list[TraceRun]) -> list[tuple[bool, float]]:
    """Levels read straight off the runs: the board alone (idle interruptions) and the board
    with the steppers held (heater-off interruptions), median reading of each."""
    out = []
    for r in runs:
        t, p = r.trace.t_s, r.trace.power_w
        for i in r.interruptions():
            inner = (t > i.t0_s) & (t < i.t1_s)
            if np.count_nonzero(inner) >= 5:
                out.append((i.steppers, float(np.median(p[inner]))))
    return out


def fit_traces(
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
    pb = _TraceProblem(runs, m, dict(fix or {}), conditions)
    res, se = solve(pb.resid, pb.x0, pb.lo, pb.hi, pb.sig, f_scale=3.0, max_nfev=300)
    n = len(pb.keys) - len(pb.rkeys)  # the run time scales come last
    params = judge(pb.keys[:n], res.x[:n], se[:n], pb.x0[:n], pb.sig[:n], keep_posterior=True)
    notes = unidentified_notes(params, "these runs alone", kept_prior=False)
    for k, v in pb.fix.items():
        params[k] = ParamResult(float(v), 0.0, float(v), 0.0, False)
    ts = res.x[n:]
    ts_se = float(ts.std(ddof=1) / math.sqrt(ts.size)) if ts.size > 1 else math.nan
    params["time_scale"] = ParamResult(float(ts.mean()), ts_se, 1.0, 0.3, ts.size > 1)
    per_run = ", ".join(f"{r.name} {v:.3f}" for r, v in zip(runs, ts, strict=True))
    notes.append("time scale per run: " + per_run)
    rms = float(np.sqrt(np.mean(np.concatenate(pb.curves(res.x)) ** 2))) * SIGMA_CURVE
    mfit = _apply(m, {k: p.value for k, p in params.items()})
    return TraceFit(params, mfit, [r.name for r in runs], notes, rms)


def predict_run(r: TraceRun, fit: TraceFit | FdmMachine) -> tuple[float, float]:
    """(energy J, duration s) of the run's job, interruptions included."""
    m = fit.machine_for(r) if isinstance(fit, TraceFit) else fit
    t, parts = run_model(r, m)
    return float(parts[-1].sum()), float(t[-1])
