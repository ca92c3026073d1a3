"""Heater models from a Klipper ``klippy.log``'s heat-ups (the log read by
:func:`.inputs.klipper.read_klippy_stats`: each heater's target, temperature and duty).

Without a power meter only the temperature response is observable: per heat-up we fit
``dT/dt = (g·u(t−θ) − (T − T_amb))/τ`` (gain ``g`` = steady rise at full duty in K, time
constant ``τ``, dead time ``θ``, ambient), simulated from the first report under the logged
duty (exact first-order steps, :meth:`HeaterModel.step`), the same form RepRapFirmware's M303
reports, so the fits compare directly with autotune results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from .inputs.klipper import HeaterLog


@dataclass
class HeatupFit:
    heater: str
    start_s: float
    from_c: float
    to_c: float
    gain_k: float
    tau_s: float
    dead_s: float
    t_amb_c: float
    rms_c: float
    n: int


def _simulate(t, u, t0_c, gain, tau, dead, amb):
    ud = np.interp(t - dead, t, u, left=0.0)
    out = np.empty_like(t)
    out[0] = t0_c
    for i in range(1, t.size):
        dt = t[i] - t[i - 1]
        tinf = amb + gain * ud[i - 1]
        out[i] = tinf + (out[i - 1] - tinf) * np.exp(-dt / tau)
    return out


def heatups(log: HeaterLog, max_s: float = 900.0, min_rise_c: float = 20.0) -> list[slice]:
    """Index ranges: from a target switching on (from near room temperature) for up to
    ``max_s`` while the target stays on."""
    out = []
    on = log.target_c > 0
    i = 1
    n = on.size
    while i < n:
        if on[i] and not on[i - 1] and log.target_c[i] - log.temp_c[i] >= min_rise_c:
            j = i
            while (
                j + 1 < n
                and on[j + 1]
                and log.session[j + 1] == log.session[i]
                and log.t_s[j + 1] - log.t_s[i] <= max_s
                and log.t_s[j + 1] - log.t_s[j] < 5.0
            ):
                j += 1
            if log.t_s[j] - log.t_s[i] > 60:
                out.append(slice(i - 1, j + 1))
            i = j + 1
        else:
            i += 1
    return out


def fit_heatup(log: HeaterLog, sl: slice) -> HeatupFit:
    t = log.t_s[sl] - log.t_s[sl][0]
    y, u = log.temp_c[sl], log.pwm[sl]
    x0 = np.array([max(50.0, 2 * (y.max() - y[0])), 300.0, 3.0, y[0]])

    def r(x):
        return _simulate(t, u, y[0], *x) - y

    res = least_squares(
        r,
        x0,
        bounds=([5.0, 5.0, 0.0, y[0] - 15], [3000.0, 5000.0, 60.0, y[0] + 5]),
        loss="soft_l1",
        f_scale=1.0,
    )
    g, tau, dead, amb = res.x
    rms = float(np.sqrt(np.mean(r(res.x) ** 2)))
    return HeatupFit(log.heater, float(log.t_s[sl][0]), float(y[0]), float(log.target_c[sl][-1]),
                     float(g), float(tau), float(dead), float(amb), rms, int(t.size))  # fmt: skip
