"""Fit the one thermal/electrical model (:mod:`slicer_energy.thermal`) to sessions.

Unknowns: per heater ``p_max_w``, ``r_k_per_w``, ``c_j_per_k``, ``t_amb_c``; electronics
base, steppers enabled, steppers moving, part fan, PSU efficiency. Residuals:

* power: each meter reading minus the model's wall power averaged over the reading's window,
  ``(P_el + P_st,en·en + P_st,mv·mv + P_fan·fan + P_hot·d_hot + P_bed·d_bed)/η``, with the
  window means of the measured heater duty and the machine state;
* temperature: each heater report minus the exact first-order step (``HeaterModel.step``)
  from the previous report under the measured duty (equation error: no drift, any gap);
  while extruding, the hotend also heats the filament fed in, ``ṁ·c_p·(T − T_amb)`` with
  ``ṁ`` from the acknowledged E moves (:func:`session.flow_signal`) and ``c_p`` fitted
  (``filament.cp_j_per_gk``); sessions without a flow signal leave those intervals out;
* priors: ``(θ − θ_prior)/σ_prior`` from the base machine profile, so that a parameter the
  data cannot determine stays at its prior instead of wandering.

``scipy.optimize.least_squares`` (trf, bounded, soft-L1 loss) in two passes (the second with
the noise levels re-estimated from the first's residuals). Uncertainties come from the
Jacobian, ``cov = (JᵀJ)⁻¹``; a parameter is *identified* when the data shrink its prior
standard deviation to less than half. Unidentified parameters are reported and reset to the
prior. Note: heater temperatures fix P/C and R·C, the meter fixes P/η; the absolute scale
(η) therefore comes from its prior unless something else pins it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult, least_squares

from ..errors import CalibrationError
from ..machine import FdmMachine
from ..thermal import step_array, wall_power_array
from .inputs.session import Session, StepFn

HEATERS = ("hotend", "bed")
ELEC = (
    "p_electronics_w",
    "p_steppers_enabled_w",
    "p_steppers_moving_w",
    "p_fans_w",
    "psu_efficiency",
)
PARAMS = (
    tuple(f"{h}.{k}" for h in HEATERS for k in ("p_max_w", "r_k_per_w", "c_j_per_k", "t_amb_c"))
    + tuple(f"electrical.{k}" for k in ELEC)
    + ("filament.cp_j_per_gk",)
)

# Prior widths: relative for scale parameters, absolute for ambient and efficiency.
PRIOR_REL_SIGMA = 0.5  # assumption: a profile value is known to a factor of ~1.5
PRIOR_T_AMB_SIGMA_C = 5.0  # assumption: room 17..27 °C
PRIOR_ETA_SIGMA = 0.03  # assumption: 80 PLUS-class supplies 0.80..0.90 (rig/sim/physics ranges)
IDENTIFIED_SHRINK = 0.5  # posterior σ below half the prior σ = the data determine it
# θ's keys for the loads of thermal.LOAD_COLUMNS, in that order (the columns prepare builds)
_LOAD_KEYS = (
    "electrical.p_electronics_w",
    "electrical.p_steppers_enabled_w",
    "electrical.p_steppers_moving_w",
    "electrical.p_fans_w",
    "hotend.p_max_w",
    "bed.p_max_w",
)


@dataclass
class ParamResult:
    value: float
    stderr: float
    prior: float
    prior_sigma: float
    identified: bool


@dataclass
class FitResult:
    params: dict[str, ParamResult]
    r2: float
    rms_w: float
    rms_temp_c: dict[str, float]
    n_power: int
    n_temp: int
    sessions: list[str]
    notes: list[str] = field(default_factory=list)
    time_scale: float = 1.0
    time_scale_stderr: float = 0.0
    homing_s: float | None = None  # measured mean G28 duration
    wait_extra_s: float = 0.0  # real M109/M190 beyond ideal control, per wait

    def value(self, key: str) -> float:
        return self.params[key].value


def priors_from_machine(m: FdmMachine) -> tuple[np.ndarray, np.ndarray]:
    vals, sig = [], []
    for key in PARAMS:
        grp, name = key.split(".")
        obj = getattr(m, grp)
        v = float(getattr(obj, name))
        vals.append(v)
        if name == "t_amb_c":
            sig.append(PRIOR_T_AMB_SIGMA_C)
        elif name == "psu_efficiency":
            sig.append(PRIOR_ETA_SIGMA)
        else:
            sig.append(max(PRIOR_REL_SIGMA * abs(v), 0.5))
    return np.array(vals), np.array(sig)


def _bounds(prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for key, v in zip(PARAMS, prior, strict=True):
        name = key.split(".")[1]
        if name == "t_amb_c":
            lo.append(-10.0)
            hi.append(50.0)
        elif name == "psu_efficiency":
            lo.append(0.5)
            hi.append(1.0)
        elif name in ("p_max_w", "r_k_per_w", "c_j_per_k"):
            lo.append(0.1 * v)
            hi.append(10.0 * v)
        else:
            lo.append(0.0)
            hi.append(max(10.0 * v, 50.0))
    return np.array(lo), np.array(hi)


def _centered_duty(tr) -> StepFn:
    """Duty reported at t_k held over the half-intervals around t_k. A report without a duty
    (an empty or damaged ``pwm_raw``) holds the one before it (the first ones, the first
    known), so one gap does not make the whole power model unknown."""
    t, duty = tr.t_s, _hold_known(tr.duty)
    if t.size < 2:
        return StepFn(t, duty)
    edges = np.concatenate(([t[0]], 0.5 * (t[1:] + t[:-1])))
    return StepFn(edges, duty, float(t[-1]))


def _hold_known(v: np.ndarray) -> np.ndarray:
    """``v`` with each NaN replaced by the last finite value before it (leading NaNs by the
    first finite one); unchanged when nothing in it is finite."""
    known = np.isfinite(v)
    if known.all() or not known.any():
        return v
    idx = np.where(known, np.arange(v.size), 0)
    np.maximum.accumulate(idx, out=idx)
    idx[: int(np.argmax(known))] = int(np.argmax(known))
    return v[idx]


@dataclass
class _Prepared:
    feats: np.ndarray  # n x 6 in thermal.LOAD_COLUMNS order: 1, en, mv, fan, d_hot, d_bed
    power: np.ndarray
    temp: dict[str, tuple[np.ndarray, ...]]  # T0, T1, dt, duty, t1, flow mm/s


def prepare(s: Session) -> _Prepared:
    a = s.power_t_s - s.power_window_s
    b = s.power_t_s
    cols = [np.ones_like(b), s.steppers.mean(a, b), s.moving.mean(a, b), s.fan.mean(a, b)]
    temp = {}
    for h in HEATERS:
        tr = s.heaters.get(h)
        if tr is None or not s.duty_known:
            cols.append(np.zeros_like(b))
            continue
        fn = _centered_duty(tr)
        cols.append(fn.mean(a, b))
        t0, t1 = tr.t_s[:-1], tr.t_s[1:]
        dt = t1 - t0
        ok = (dt > 1e-3) & (dt <= 10.0) & np.isfinite(tr.duty[:-1])
        flow = np.zeros_like(t0)
        if h == "hotend" and s.flow_mm_s is not None:
            flow = s.flow_mm_s.mean(t0, t1)
        elif h == "hotend" and s.print_t0_s is not None:
            ok &= ~((t1 > s.print_t0_s) & (t0 < s.job_t1_s))  # filament flow not known
        d = fn.mean(t0, t1)
        temp[h] = (tr.actual_c[:-1][ok], tr.actual_c[1:][ok], dt[ok], d[ok], t1[ok], flow[ok])
    return _Prepared(np.column_stack(cols), s.power_w, temp)


def model_power(theta: dict[str, float], feats: np.ndarray) -> np.ndarray:
    """Wall power of the fitted model for the feature columns :func:`prepare` builds
    (:func:`thermal.wall_power_array` with θ's loads)."""
    w = np.array([theta[k] for k in _LOAD_KEYS])
    return wall_power_array(feats, w, theta["electrical.psu_efficiency"])


def model_temp(
    theta: dict[str, float], h: str, t0, dt, duty, flow_g_s: np.ndarray | float = 0.0
) -> np.ndarray:
    """Exact first-order step (:func:`thermal.step_array` with θ's heater ``h``);
    ``flow_g_s`` is the filament mass flow through the hotend."""
    p, r, c, ta = (theta[f"{h}.{k}"] for k in ("p_max_w", "r_k_per_w", "c_j_per_k", "t_amb_c"))
    return step_array(t0, duty, dt, p, r, c, ta, flow_g_s * theta.get("filament.cp_j_per_gk", 0.0))


def solve(
    resid: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    x_scale: np.ndarray,
    *,
    f_scale: float,
    max_nfev: int,
) -> tuple[OptimizeResult, np.ndarray]:
    """Bounded robust least squares (trf, soft-L1) and the standard errors from its Jacobian,
    ``cov = (JᵀJ)⁺`` (NaN where that cannot be formed)."""
    res = least_squares(
        resid,
        x0,
        bounds=(lo, hi),
        loss="soft_l1",
        f_scale=f_scale,
        x_scale=x_scale,
        method="trf",
        max_nfev=max_nfev,
    )
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac)
    except np.linalg.LinAlgError:  # pragma: no cover
        return res, np.full(len(x0), np.nan)
    return res, np.sqrt(np.clip(np.diag(cov), 0.0, None))


def judge(
    keys: list[str], x: np.ndarray, se: np.ndarray, prior: np.ndarray, prior_sigma: np.ndarray,
    *, keep_posterior: bool,
) -> dict[str, ParamResult]:  # fmt: skip
    """Each fitted value with its standard error, identified when the data shrink its prior
    σ below ``IDENTIFIED_SHRINK`` of it; one that is not keeps its posterior value
    (``keep_posterior``: directions the data leave free stay at the prior anyway, and
    resetting one parameter of a determined sum would break the sum) or its prior."""
    out = {}
    for k, v, s, p0, ps in zip(keys, x, se, prior, prior_sigma, strict=True):
        ident = bool(s < IDENTIFIED_SHRINK * ps)
        val = v if ident or keep_posterior else p0
        out[k] = ParamResult(float(val), float(s), float(p0), float(ps), ident)
    return out


def unidentified_notes(params: dict[str, ParamResult], source: str, kept_prior: bool) -> list[str]:
    """One line per parameter ``source`` (e.g. "these sessions") did not determine."""
    notes = []
    for k, p in params.items():
        if p.identified:
            continue
        tail = f"kept the prior {p.prior:.4g}"
        if not kept_prior:
            tail = f"{p.value:.4g} rests on the prior {p.prior:.4g}"
        notes.append(
            f"{k}: not determined by {source} (σ {p.stderr:.3g} vs prior σ "
            f"{p.prior_sigma:.3g}); {tail}"
        )
    return notes


class _SessionProblem:
    """The residuals of :func:`fit_sessions`: meter power, heater temperatures and priors,
    each scaled by its noise level (re-estimated between passes)."""

    def __init__(self, sessions: list[Session], machine: FdmMachine, fix: dict[str, float]):
        for k in fix:
            if k not in PARAMS:
                raise CalibrationError(f"cannot fix unknown parameter {k!r}")
        self.fix = fix
        self.prep = [prepare(s) for s in sessions]
        self.prior, self.psig = priors_from_machine(machine)
        self.free = [i for i, k in enumerate(PARAMS) if k not in fix]
        lo, hi = _bounds(self.prior)
        self.lo, self.hi = lo[self.free], hi[self.free]
        self.feats = np.vstack([p.feats for p in self.prep])
        self.g_per_mm = machine.filament.mass_g(1.0)
        self.power = np.concatenate([p.power for p in self.prep])
        self.sig_p = 1.0 + 0.01 * float(np.median(self.power))
        self.sig_t = dict.fromkeys(HEATERS, 0.3)

    def theta(self, x: np.ndarray) -> dict[str, float]:
        th = dict(zip(PARAMS, self.prior, strict=True))
        th.update(self.fix)
        for j, i in enumerate(self.free):
            th[PARAMS[i]] = float(x[j])
        return th

    def parts(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Power residuals (W) and temperature residuals per heater (°C)."""
        th = self.theta(x)
        rp = self.power - model_power(th, self.feats)
        rt = {}
        for h in HEATERS:
            chunks = [
                p.temp[h][1]
                - model_temp(
                    th, h, p.temp[h][0], p.temp[h][2], p.temp[h][3], p.temp[h][5] * self.g_per_mm
                )
                for p in self.prep
                if h in p.temp and p.temp[h][0].size
            ]
            rt[h] = np.concatenate(chunks) if chunks else np.zeros(0)
        return rp, rt

    def resid(self, x: np.ndarray) -> np.ndarray:
        rp, rt = self.parts(x)
        r = [rp / self.sig_p] + [rt[h] / self.sig_t[h] for h in HEATERS]
        r.append((x - self.prior[self.free]) / self.psig[self.free])
        return np.concatenate(r)

    def renoise(self, x: np.ndarray) -> None:
        """Noise levels from the residuals at ``x`` (robust: 1.4826 × MAD)."""
        rp, rt = self.parts(x)
        self.sig_p = max(0.05, 1.4826 * float(np.median(np.abs(rp - np.median(rp)))))
        for h in HEATERS:
            if rt[h].size > 10:
                self.sig_t[h] = max(0.01, 1.4826 * float(np.median(np.abs(rt[h]))))


def fit_sessions(
    sessions: list[Session],
    machine: FdmMachine,
    *,
    fix: dict[str, float] | None = None,
) -> FitResult:
    """Fit the machine's thermal/electrical parameters to ``sessions``.

    ``fix`` holds parameters at given values (e.g. ``{"electrical.psu_efficiency": 1.0}``
    for a meter on the DC side of the supply).
    """
    if not sessions:
        raise CalibrationError("no sessions to calibrate from")
    pb = _SessionProblem(sessions, machine, dict(fix or {}))
    free, prior, psig = pb.free, pb.prior[pb.free], pb.psig[pb.free]
    x = np.clip(prior, pb.lo + 1e-9, pb.hi - 1e-9)
    for _pass in range(2):
        res, se = solve(pb.resid, x, pb.lo, pb.hi, psig, f_scale=2.0, max_nfev=400)
        pb.renoise(res.x)
        x = res.x
    rp, rt = pb.parts(x)
    th = pb.theta(x)
    keys = [PARAMS[i] for i in free]
    judged = judge(keys, [th[k] for k in keys], se, prior, psig, keep_posterior=False)
    out = {
        k: judged[k] if k in judged else ParamResult(pb.fix[k], 0.0, pb.prior[i], pb.psig[i], False)
        for i, k in enumerate(PARAMS)
    }
    ss_res = float(np.sum(rp**2))
    ss_tot = float(np.sum((pb.power - pb.power.mean()) ** 2))
    return FitResult(
        params=out,
        r2=1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        rms_w=float(np.sqrt(np.mean(rp**2))),
        rms_temp_c={h: float(np.sqrt(np.mean(rt[h] ** 2))) for h in HEATERS if rt[h].size},
        n_power=int(pb.power.size),
        n_temp=int(sum(v.size for v in rt.values())),
        sessions=[s.name for s in sessions],
        notes=unidentified_notes(judged, "these sessions", kept_prior=True),
    )


def calibrated_machine(machine: FdmMachine, fit: FitResult) -> FdmMachine:
    """The base machine with the fitted values in place (kinematics etc. unchanged)."""
    from dataclasses import replace

    def grp(name: str):
        obj = getattr(machine, name)
        kw = {k.split(".")[1]: fit.params[k].value for k in fit.params if k.startswith(name + ".")}
        return replace(obj, **kw)

    return replace(
        machine,
        hotend=grp("hotend"),
        bed=grp("bed"),
        electrical=grp("electrical"),
        filament=grp("filament"),
        time_scale=fit.time_scale,
        wait_extra_s=fit.wait_extra_s,
        homing_s=machine.homing_s if fit.homing_s is None else fit.homing_s,
    )
