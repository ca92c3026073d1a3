"""The one electrical/thermal model of an FDM printer (DESIGN.md, "Process physics").

Wall power ``P = (P_electronics + P_steppers + P_fans + P_bed + P_hotend) / η_PSU``.
Each heater is a first-order system

    C dT/dt = u·P_max − (T − T_amb)/R − (ṁ·c_p + f·G_fan)·(T − T_amb)

(the last term only for the hotend: heating the filament flow, and the extra convective loss
``G_fan`` of the part-cooling fan at fraction ``f``; RepRapFirmware's M303 autotune of a Prusa
MK3S hotend finds the loss 2.6× higher at 100 % fan than with the fan off, corpus
``power/notes/rrf_heater_models_prusa_mk3s_duet3.csv``). Both the
G-code timeline and the geometry-based FDM prediction integrate this same
model; calibration fits its parameters. Time is always passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class HeaterModel:
    """First-order heater: maximum electrical power, thermal resistance and capacity."""

    p_max_w: float  # heater power at full duty
    r_k_per_w: float  # thermal resistance to ambient
    c_j_per_k: float  # heat capacity
    t_amb_c: float = 22.0
    g_fan_w_per_k: float = 0.0  # extra loss at 100 % part-cooling fan (hotend), W/K

    @property
    def tau_s(self) -> float:
        return self.r_k_per_w * self.c_j_per_k

    def max_temp_c(self, g_flow_w_per_k: float = 0.0) -> float:
        """Steady temperature at full power (the heater cannot exceed it)."""
        return self.t_amb_c + self.p_max_w / (1.0 / self.r_k_per_w + g_flow_w_per_k)

    def step(self, t_c: float, duty: float, dt_s: float, g_flow_w_per_k: float = 0.0) -> float:
        """Temperature after ``dt_s`` at constant ``duty`` (exact solution, any step size).

        ``g_flow_w_per_k`` is ṁ·c_p of the filament flowing through (0 for the bed).
        """
        g = 1.0 / self.r_k_per_w + g_flow_w_per_k
        t_inf = self.t_amb_c + duty * self.p_max_w / g
        return t_inf + (t_c - t_inf) * math.exp(-dt_s * g / self.c_j_per_k)

    def holding_duty(self, t_set_c: float, g_flow_w_per_k: float = 0.0) -> float:
        """Duty (0..1) that holds ``t_set_c``; 1.0 if the set point is unreachable."""
        g = 1.0 / self.r_k_per_w + g_flow_w_per_k
        return min(1.0, max(0.0, (t_set_c - self.t_amb_c) * g / self.p_max_w))

    def time_to_reach_s(self, t0_c: float, t_set_c: float, g_flow_w_per_k: float = 0.0) -> float:
        """Seconds at full power from ``t0_c`` to ``t_set_c`` (0 if already there, inf if never)."""
        if t_set_c <= t0_c:
            return 0.0
        g = 1.0 / self.r_k_per_w + g_flow_w_per_k
        t_inf = self.t_amb_c + self.p_max_w / g
        if t_set_c >= t_inf:
            return math.inf
        return self.c_j_per_k / g * math.log((t_inf - t0_c) / (t_inf - t_set_c))


@dataclass(frozen=True)
class ElectricalModel:
    """Non-heater loads and the power supply's efficiency."""

    p_electronics_w: float  # controller, display, idle PSU draw at the board
    p_steppers_enabled_w: float  # all motors energised, standing
    p_steppers_moving_w: float  # extra while moving
    p_fans_w: float  # part-cooling fan at full speed (hotend fan is in electronics)
    psu_efficiency: float  # 0..1

    def wall_power_w(
        self,
        p_bed_w: float,
        p_hotend_w: float,
        steppers_enabled: bool = True,
        moving: bool = False,
        fan_fraction: float = 0.0,
    ) -> float:
        p = self.p_electronics_w + p_bed_w + p_hotend_w + fan_fraction * self.p_fans_w
        if steppers_enabled:
            p += self.p_steppers_enabled_w + (self.p_steppers_moving_w if moving else 0.0)
        return p / self.psu_efficiency


def heater_interval(
    model: HeaterModel,
    t0_c: float,
    t_set_c: float,
    dt_s: float,
    g_flow_w_per_k: float = 0.0,
    fan: float = 0.0,
) -> tuple[float, float]:
    """Temperature and electrical energy after ``dt_s`` of ideal control towards ``t_set_c``.

    Full power until the set point is reached, then the holding power; off
    (duty 0) while cooling down to it, or for ``t_set_c <= 0`` (heater off).
    ``fan`` (0..1) adds ``fan × model.g_fan_w_per_k`` to the loss.
    Exact for any ``dt_s`` (no time stepping). Returns ``(t_end_c, energy_j)``.
    """
    g_flow_w_per_k = g_flow_w_per_k + fan * model.g_fan_w_per_k
    if dt_s <= 0.0:
        return t0_c, 0.0
    if t_set_c <= 0.0 or t_set_c <= model.t_amb_c:
        return model.step(t0_c, 0.0, dt_s, g_flow_w_per_k), 0.0
    hold_w = model.holding_duty(t_set_c, g_flow_w_per_k) * model.p_max_w
    if t0_c < t_set_c:
        t_r = model.time_to_reach_s(t0_c, t_set_c, g_flow_w_per_k)
        if t_r >= dt_s:
            return model.step(t0_c, 1.0, dt_s, g_flow_w_per_k), model.p_max_w * dt_s
        return t_set_c, model.p_max_w * t_r + hold_w * (dt_s - t_r)
    t_c = time_to_cool_s(model, t0_c, t_set_c, g_flow_w_per_k)
    if t_c >= dt_s:
        return model.step(t0_c, 0.0, dt_s, g_flow_w_per_k), 0.0
    return t_set_c, hold_w * (dt_s - t_c)


def time_to_cool_s(
    model: HeaterModel, t0_c: float, t_set_c: float, g_flow_w_per_k: float = 0.0
) -> float:
    """Seconds with the heater off from ``t0_c`` down to ``t_set_c`` (inf if never)."""
    if t_set_c >= t0_c:
        return 0.0
    if t_set_c <= model.t_amb_c:
        return math.inf
    g = 1.0 / model.r_k_per_w + g_flow_w_per_k
    return model.c_j_per_k / g * math.log((t0_c - model.t_amb_c) / (t_set_c - model.t_amb_c))
