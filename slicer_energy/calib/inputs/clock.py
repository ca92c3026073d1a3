"""Estimate the clock offset between a power meter and the host that logged the print.

A smart plug's clock and the print host's clock differ (NTP on one and not the other, a
plug that reports in its own local time, a few seconds of network delay). Heaters dominate a
printer's power, and the host log knows when they ran: with the firmware's heater output
(``@:``/``B@:``) the duty itself, otherwise "heating at full power" (set point above the
measured temperature) and "holding" (set point on) from the temperature reports. Where the job's
lines are known, steppers enabled, moving and part fan (from the commands) are added. For
each trial offset the meter's readings are regressed on the window means of those signals
(``P ≈ a + Σ b_k·x_k``, ordinary least squares, the window each reading averages); the offset
leaving the smallest share of the meter's variance unexplained (1 − R²) wins. The heat-up
steps make the minimum sharp.

Uncertainty: half-width of the Δχ² = 1 interval of the residual curve around its minimum
(σ² from the residuals, inflated for their lag-1 autocorrelation), combined with the time
quantisation of both logs (report interval and meter timestamp resolution, each /√12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ...errors import CalibrationError
from .plug import PlugTrace, time_resolution_s
from .session import HeaterTrace, StepFn

HEATING_MARGIN_K = 2.0  # below set point by more than this: the firmware drives full power
MIN_READINGS = 30  # readings in the overlap needed for an estimate
MIN_R2 = 0.5  # the heater signals must explain at least this share of the meter's variance
MIN_CONTRAST = 0.2  # best residual this much below the median over all offsets: unambiguous


@dataclass
class ClockOffset:
    """Meter clock − host clock, in seconds (host time of a reading = meter time − offset)."""

    offset_s: float
    stderr_s: float
    r2: float  # meter power explained by the heater signals at this offset
    n: int  # readings used
    search_s: tuple[float, float]
    method: str
    lags_s: np.ndarray
    mse: np.ndarray

    def as_dict(self) -> dict:
        """The estimate without its search curve (``lags_s``, ``mse``)."""
        curve = ("lags_s", "mse")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in curve}


def _centered(t: np.ndarray, v: np.ndarray) -> StepFn:
    """A report's value held over the half-intervals around it (unbiased in time)."""
    if t.size < 2:
        return StepFn(t, v)
    edges = np.concatenate(([t[0]], 0.5 * (t[1:] + t[:-1])))
    return StepFn(edges, v, float(t[-1]))


def host_power_features(
    heaters: dict[str, HeaterTrace], duty_known: bool, t0_s: float, t1_s: float
) -> list[tuple[str, StepFn, float]]:
    """Signals from the host log that the meter's power follows: ``(name, signal, report
    interval s)``. With PWM: each heater's duty; without: heating (full power) and holding."""
    out = []
    for name, h in heaters.items():
        if h.t_s.size < 3:
            continue
        dt = float(np.median(np.diff(h.t_s)))
        if duty_known and np.isfinite(h.duty).mean() > 0.5:
            d = np.nan_to_num(h.duty, nan=0.0)
            out.append((f"{name} duty", _centered(h.t_s, d), dt))
        else:
            on = h.target_c > 0
            heating = on & (h.actual_c < h.target_c - HEATING_MARGIN_K)
            out.append((f"{name} heating", _centered(h.t_s, heating.astype(float)), dt))
            out.append((f"{name} holding", _centered(h.t_s, (on & ~heating).astype(float)), dt))
    if not out:
        raise CalibrationError("the host log has no heater reports to align the meter with")
    return out


def _score(
    feats: list[tuple[str, StepFn, float]],
    t: np.ndarray,
    w: np.ndarray,
    p: np.ndarray,
    span: tuple[float, float],
    lag: float,
) -> tuple[float, int, np.ndarray | None, float]:
    a, b = t - w - lag, t - lag
    m = (a >= span[0]) & (b <= span[1])
    n = int(m.sum())
    if n < MIN_READINGS:
        return math.inf, n, None, math.nan
    x = np.column_stack([np.ones(n)] + [f.mean(a[m], b[m]) for _n, f, _dt in feats])
    y = p[m]
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    r = y - x @ beta
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(r**2)) / sst if sst > 0 else math.nan
    return float(np.mean(r**2)), n, r, r2


def estimate_offset(
    feats: list[tuple[str, StepFn, float]],
    plug: PlugTrace,
    host_span_s: tuple[float, float],
    *,
    max_offset_s: float = 600.0,
    step_s: float = 1.0,
    source: str = "host log",
) -> ClockOffset:
    """Offset (meter − host) that best lines the meter's power up with the host's heater
    signals, searched over ±``max_offset_s``. Raises naming the plug file when the traces do
    not overlap at any offset in range, or when the alignment is not determined."""
    t, w, p = plug.t_s, plug.window_s, plug.power_w
    lags = np.arange(-max_offset_s, max_offset_s + 0.5 * step_s, step_s)
    res = [_score(feats, t, w, p, host_span_s, float(L)) for L in lags]
    mse = np.array([r[0] for r in res])
    ns = np.array([r[1] for r in res])
    if not np.isfinite(mse).any():
        raise CalibrationError(
            f"{plug.path}: meter readings do not overlap {source} at any clock offset within "
            f"±{max_offset_s:g} s (meter {_utc(t[0])}..{_utc(t[-1])}, host "
            f"{_utc(host_span_s[0])}..{_utc(host_span_s[1])} UTC); wrong file, date or time "
            "zone? (--plug-tz, --octoprint-tz, --max-offset)"
        )
    # Offsets are compared by the share of the meter's variance left unexplained (1 − R²):
    # the readings in the overlap change with the offset, and a raw residual would favour an
    # offset that pushes the heat-up (large, hard-to-fit steps) out of the overlap.
    unexpl = np.array([1.0 - r[3] if np.isfinite(r[3]) else np.inf for r in res])
    valid = np.isfinite(mse) & np.isfinite(unexpl) & (ns >= 0.5 * ns.max())
    u_v = np.where(valid, unexpl, np.inf)
    i = int(np.argmin(u_v))
    coarse = float(lags[i])
    fine = np.arange(coarse - 2 * step_s, coarse + 2 * step_s + 1e-9, 0.1 * step_s)
    fres = [_score(feats, t, w, p, host_span_s, float(L)) for L in fine]
    fm = np.array([r[0] for r in fres])
    fu = np.array([1.0 - r[3] if np.isfinite(r[3]) else np.inf for r in fres])
    j = int(np.argmin(fu))
    best, (m_best, n_best, resid, r2) = float(fine[j]), fres[j]
    med = float(np.median(u_v[valid]))
    m_best_u = float(fu[j])
    if not (r2 >= MIN_R2):
        raise CalibrationError(
            f"{plug.path}: the meter's power does not follow the heaters in {source} at any "
            f"offset (best R² {r2:.2f} at {best:+.1f} s); is it the same printer and day?"
        )
    if valid.sum() > 10 and (med - m_best_u) / med < MIN_CONTRAST:
        raise CalibrationError(
            f"{plug.path}: clock offset not determined (residual curve flat over ±{max_offset_s:g}"
            " s); the recording needs a heat-up in the overlap of both logs"
        )
    # Δχ² = 1 from a parabola through the fine curve around the minimum
    near = np.abs(fine - best) <= 1.0 * step_s + 1e-9
    k = 0.0
    if near.sum() >= 3:
        c2 = np.polyfit(fine[near] - best, fm[near], 2)[0]
        k = max(float(c2), 0.0)
    sig2 = m_best * n_best / max(n_best - len(feats) - 1, 1)
    rho = 0.0
    if resid is not None and resid.size > 3:
        rho = float(np.clip(np.corrcoef(resid[:-1], resid[1:])[0, 1], 0.0, 0.95))
    infl = math.sqrt((1 + rho) / (1 - rho))
    stat = infl * math.sqrt(sig2 / (n_best * k)) if k > 0 else step_s
    report_dt = max(dt for _n, _f, dt in feats)  # machine-state signals carry dt 0
    meter_res = _resolution(t)
    se = math.sqrt(stat**2 + (report_dt**2 + meter_res**2) / 12.0)
    return ClockOffset(
        offset_s=best,
        stderr_s=se,
        r2=float(r2),
        n=n_best,
        search_s=(-max_offset_s, max_offset_s),
        method="regression on " + ", ".join(n for n, _f, _dt in feats),
        lags_s=lags,
        mse=mse,
    )


def _resolution(t: np.ndarray) -> float:
    """Timestamp resolution of the meter log: 1 s if every time is a whole second, etc."""
    return time_resolution_s(t)


def _utc(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
