"""The equations of the virtual printer's hidden physics: richer in form than the first-order
model calibration fits (:mod:`slicer_energy.thermal`), so a recovery test can catch a wrong
model form instead of fitting the simulator's own equations back.

* **Heater, two nodes.** The block (capacity ``C``) takes the electrical power
  ``P(T) = P_25·(1 + U·(T − 25))`` (the ``U·T + V`` term of Prusa's firmware thermal model,
  machine-data.md A1) and loses heat by natural convection ``∝ ΔT^1.25`` (laminar
  Nu ∝ Ra^¼; Incropera, *Fundamentals of Heat and Mass Transfer*, ch. 9) plus radiation
  ``∝ T⁴ − T_amb⁴``; the hotend also heats the filament flowing through. The sensor follows
  the block with a first-order lag (Prusa's ``LAG``, RepRapFirmware's M303 dead time); the
  firmware controls and reports the sensor, never the block.
* **Power supply.** Loss ``L0 + k1·P + k2·P²`` (no-load, switching and conduction losses), so
  the efficiency varies with load.
* **Part fan.** Electrical power ``P_full·f^n`` (fan affinity law), not linear in PWM.

:meth:`Heater.effective` and :meth:`Electrical.effective_efficiency` give the first-order
equivalents a calibration is compared with (see :meth:`~.physics.PrinterParams.effective`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KELVIN = 273.15
CONVECTION_EXPONENT = 1.25  # laminar natural convection, h ∝ ΔT^¼ (Incropera ch. 9)
P_COEFF_REF_C = 25.0  # the heater power P_25 is stated at this temperature (assumption)


@dataclass(frozen=True)
class Heater:
    """A two-node heater: block with nonlinear loss, sensor lagging it."""

    p_max_w: float  # electrical power at full duty with the block at P_COEFF_REF_C
    p_temp_coeff_per_k: float  # relative change of that power per K (Prusa's U)
    r_k_per_w: float  # secant resistance at t_ref_c: (t_ref − t_amb) / loss(t_ref)
    rad_share: float  # share of radiation in the loss at t_ref_c
    c_j_per_k: float  # heat capacity of the block
    sensor_lag_s: float  # time constant of the sensor following the block
    t_ref_c: float  # where r_k_per_w and rad_share are stated
    t_amb_c: float = 22.0

    def power_w(self, t_block_c: float, duty: float) -> float:
        """Electrical power at ``duty`` with the block at ``t_block_c``."""
        return (
            duty
            * self.p_max_w
            * max(0.0, 1.0 + self.p_temp_coeff_per_k * (t_block_c - P_COEFF_REF_C))
        )

    def loss_w(self, t_block_c: float) -> float:
        """Heat lost to the room: convection ∝ ΔT^1.25 plus radiation ∝ T⁴ − T_amb⁴,
        scaled so that the loss at ``t_ref_c`` is ``(t_ref − t_amb) / r_k_per_w``."""
        d_ref = self.t_ref_c - self.t_amb_c
        q_ref = d_ref / self.r_k_per_w
        d = t_block_c - self.t_amb_c
        conv = math.copysign(abs(d / d_ref) ** CONVECTION_EXPONENT, d)
        ta4 = (self.t_amb_c + KELVIN) ** 4
        rad = ((t_block_c + KELVIN) ** 4 - ta4) / ((self.t_ref_c + KELVIN) ** 4 - ta4)
        return q_ref * ((1.0 - self.rad_share) * conv + self.rad_share * rad)

    def step(
        self, t_block_c: float, t_sensor_c: float, p_w: float, dt_s: float, g_flow_w_per_k: float
    ) -> tuple[float, float]:
        """``(block, sensor)`` temperatures after ``dt_s`` with electrical power ``p_w``:
        the block by one Euler step (dt ≪ its time constant), the sensor relaxing exactly
        towards the new block temperature."""
        q = p_w - self.loss_w(t_block_c) - g_flow_w_per_k * (t_block_c - self.t_amb_c)
        t_b = t_block_c + q * dt_s / self.c_j_per_k
        return t_b, t_b + (t_sensor_c - t_b) * math.exp(-dt_s / self.sensor_lag_s)

    def effective(self, t_set_c: float) -> dict[str, float]:
        """First-order equivalents at the set point ``t_set_c``: ``p_max_w`` the power at full
        duty there, ``r_k_per_w`` the steady-state gain ΔT / loss there (the total resistance),
        ``c_j_per_k`` the block's capacity (the sensor's is nil), so ``R·C`` is the effective
        time constant of small changes about the set point's secant."""
        return {
            "p_max_w": self.power_w(t_set_c, 1.0),
            "r_k_per_w": (t_set_c - self.t_amb_c) / self.loss_w(t_set_c),
            "c_j_per_k": self.c_j_per_k,
            "t_amb_c": self.t_amb_c,
        }


@dataclass(frozen=True)
class Psu:
    """A switch-mode supply whose loss is ``L0 + k1·P + k2·P²`` of its DC output ``P``."""

    efficiency_half_load: float  # at 50 % of the rated output
    efficiency_drop_full_load: float  # η(50 %) − η(100 %)
    rated_w: float
    no_load_w: float

    def _k(self) -> tuple[float, float]:
        """``(k1, k2)`` through the two stated efficiencies at half and full load."""
        half, full = 0.5 * self.rated_w, self.rated_w
        eta_full = self.efficiency_half_load - self.efficiency_drop_full_load
        l_half = half * (1.0 / self.efficiency_half_load - 1.0) - self.no_load_w
        l_full = full * (1.0 / eta_full - 1.0) - self.no_load_w
        k2 = (l_full - 2.0 * l_half) / (full * full - 2.0 * half * half)
        return (l_half - k2 * half * half) / half, k2

    def wall_w(self, dc_w: float) -> float:
        k1, k2 = self._k()
        return dc_w + self.no_load_w + k1 * dc_w + k2 * dc_w * dc_w


@dataclass(frozen=True)
class Electrical:
    """Loads at the board and the supply that feeds them."""

    p_electronics_w: float
    p_steppers_enabled_w: float
    p_steppers_moving_w: float
    p_fans_w: float  # part-cooling fan at full PWM
    fan_exponent: float  # P_fan = p_fans_w · f^n
    psu: Psu

    def dc_w(self, heaters_w: float, steppers_on: bool, moving: bool, fan: float) -> float:
        """DC power the supply delivers for the heaters' power and the machine state."""
        p = self.p_electronics_w + heaters_w + self.p_fans_w * max(0.0, fan) ** self.fan_exponent
        if steppers_on:
            p += self.p_steppers_enabled_w + (self.p_steppers_moving_w if moving else 0.0)
        return p

    def effective_efficiency(self, dc_w: float) -> float:
        """The supply's efficiency at the DC load ``dc_w`` (a constant-η model's equivalent
        at that operating point)."""
        return dc_w / self.psu.wall_w(dc_w)
