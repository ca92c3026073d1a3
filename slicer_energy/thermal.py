"""The one electrical/thermal model of an FDM printer and its integration over time.

Wall power ``P = (P_electronics + P_steppers + P_fans + P_bed + P_hotend) / η_PSU``.
Each heater is a first-order system

    C dT/dt = u·P_max − (T − T_amb)/R − (ṁ·c_p + f·G_fan)·(T − T_amb)

(the last term only for the hotend: heating the filament flow, and the extra convective loss
``G_fan`` of the part-cooling fan at fraction ``f``; RepRapFirmware's M303 autotune of a Prusa
MK3S hotend finds the loss 2.6× higher at 100 % fan than with the fan off, corpus
``power/notes/rrf_heater_models_prusa_mk3s_duet3.csv``).

This module owns every integration of these equations, so that the G-code timeline, the
geometry-based FDM prediction, the trace calibration and the session fit cannot drift apart:

* **scalar** (one interval at a time): :meth:`HeaterModel.step`, :func:`heater_interval`,
  :func:`wait_s` (how long an M109/M190 lasts), :func:`base_loads_w`,
  :meth:`ElectricalModel.wall_power_w`, and :class:`Timeline`, the state machine the G-code
  analyser drives with commands and the FDM prediction with an explicit schedule
  (:class:`SetPoints`, :class:`Wait`, :class:`Run`);
* **vectorised** (arrays, for the least-squares fits): :func:`step_array`,
  :func:`wall_power_array`. Each restates its scalar twin term for term; the tests hold them
  to 1e-12 of each other. Time is always passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import GcodeError

if TYPE_CHECKING:  # machine.py imports this module for the heater and electrical models
    from .machine import FdmMachine

WAIT_BAND_K = 0.5  # a wait ends within this of its set point (and none starts inside it)


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
        """Wall power for the heaters' electrical power and the machine state (scalar form
        of :func:`wall_power_array`)."""
        p_el, p_st, p_fan = base_loads_w(self, steppers_enabled, moving, fan_fraction)
        return (p_el + p_bed_w + p_hotend_w + p_fan + p_st) / self.psu_efficiency


def base_loads_w(
    el: ElectricalModel, steppers: bool, moving: bool, fan: float
) -> tuple[float, float, float]:
    """The non-heater loads at the board, ``(electronics, steppers, part fan)`` in W."""
    p_st = 0.0
    if steppers:
        p_st = el.p_steppers_enabled_w + (el.p_steppers_moving_w if moving else 0.0)
    return el.p_electronics_w, p_st, fan * el.p_fans_w


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


def wait_s(
    model: HeaterModel,
    t0_c: float,
    t_set_c: float,
    *,
    cool_ok: bool = False,
    band_k: float = WAIT_BAND_K,
    name: str = "heater",
) -> float:
    """Seconds a heater wait (M109/M190) lasts from ``t0_c`` under ideal control.

    None for a set point off (``<= 0``) or within ``band_k`` of it; cooling down to it only
    with ``cool_ok`` (M109 R). An unreachable set point is the user's profile or G-code at
    fault, never a number to make up: it raises :class:`GcodeError`.
    """
    if t_set_c <= 0:
        return 0.0
    if t0_c < t_set_c - band_k:
        dt = model.time_to_reach_s(t0_c, t_set_c)
    elif cool_ok and t0_c > t_set_c + band_k:
        dt = time_to_cool_s(model, t0_c, t_set_c)
    else:
        dt = 0.0
    if math.isinf(dt):
        raise GcodeError(
            f"set point {t_set_c:.0f} °C is above what the {name} heater model can reach "
            f"({model.max_temp_c():.0f} °C); check the machine profile"
        )
    return dt


# ------------------------------------------------------------------ vectorised forms
# Columns of the machine state for :func:`wall_power_array`, in the order of its loads.
LOAD_COLUMNS = ("electronics", "steppers_enabled", "steppers_moving", "fans", "hotend", "bed")


def step_array(
    t0_c: np.ndarray,
    duty: np.ndarray | float,
    dt_s: np.ndarray | float,
    p_max_w: float,
    r_k_per_w: float,
    c_j_per_k: float,
    t_amb_c: float,
    g_flow_w_per_k: np.ndarray | float = 0.0,
) -> np.ndarray:
    """:meth:`HeaterModel.step` over arrays (the fits vary the parameters, so they are
    passed one by one rather than as a :class:`HeaterModel`)."""
    g = 1.0 / r_k_per_w + g_flow_w_per_k
    t_inf = t_amb_c + duty * p_max_w / g
    return t_inf + (t0_c - t_inf) * np.exp(-dt_s * g / c_j_per_k)


def wall_power_array(states: np.ndarray, loads_w: np.ndarray, psu_efficiency: float) -> np.ndarray:
    """:meth:`ElectricalModel.wall_power_w` over rows of machine state.

    ``states`` is n × 6 in :data:`LOAD_COLUMNS` order (1, steppers enabled, moving, fan,
    hotend duty, bed duty; window means are fine, the model is linear in them), ``loads_w``
    the matching full-on powers (electronics, steppers enabled, moving extra, part fan,
    hotend and bed ``p_max_w``).
    """
    return states @ loads_w / psu_efficiency


def loads_w(el: ElectricalModel, hotend: HeaterModel, bed: HeaterModel) -> np.ndarray:
    """The full-on powers of a machine in :data:`LOAD_COLUMNS` order."""
    return np.array(
        [
            el.p_electronics_w,
            el.p_steppers_enabled_w,
            el.p_steppers_moving_w,
            el.p_fans_w,
            hotend.p_max_w,
            bed.p_max_w,
        ]
    )


# ------------------------------------------------------------------ the timeline
PHASES = ("motion", "wait", "dwell", "homing", "leveling")
COMPONENTS = ("bed", "hotend", "electronics", "steppers", "fans")


@dataclass
class TimelineRow:
    """One interval of the timeline (kept with ``keep_rows``): state and wall energy.
    Temperatures are the interval's means; ``*_start_c`` the state at ``t0_s``, so a plot
    starts where the printer was (a mean over a long first wait is no state at t = 0)."""

    t0_s: float
    t1_s: float
    kind: str  # one of PHASES
    layer: int
    z_mm: float
    hotend_set_c: float
    hotend_c: float
    bed_set_c: float
    bed_c: float
    fan: float
    energy_j: float  # wall energy in this interval
    hotend_start_c: float
    bed_start_c: float

    @property
    def power_w(self) -> float:
        dt = self.t1_s - self.t0_s
        return self.energy_j / dt if dt > 0 else 0.0


@dataclass(frozen=True)
class SetPoints:
    """A schedule step: new heater set points, fan fraction, steppers (None: unchanged)."""

    hotend_c: float | None = None
    bed_c: float | None = None
    fan: float | None = None
    steppers: bool | None = None


@dataclass(frozen=True)
class Wait:
    """A schedule step: wait for ``heater`` ("hotend" or "bed") to reach its set point."""

    heater: str
    cool_ok: bool = False


@dataclass(frozen=True)
class Run:
    """A schedule step: ``dt_s`` of ``kind`` (one of :data:`PHASES`), extruding
    ``extruded_mm`` of filament."""

    dt_s: float
    kind: str = "motion"
    moving: bool = True
    extruded_mm: float = 0.0


Step = SetPoints | Wait | Run


class Timeline:
    """Integrates heaters, fans and steppers over a print, one interval at a time.

    State changes come as calls (the G-code analyser's commands) or as an explicit
    schedule (:meth:`play`); each :meth:`advance` integrates the heaters exactly
    (:func:`heater_interval`) and adds the base loads, all at the wall.
    """

    def __init__(self, m: FdmMachine, thermal: bool = True, keep_rows: bool = False) -> None:
        self.m = m
        self.thermal = thermal
        self.t = 0.0
        self.he_set = 0.0
        self.bed_set = 0.0
        self.he_c = m.hotend.t_amb_c
        self.bed_c = m.bed.t_amb_c
        self.fan = 0.0
        self.steppers = False
        self.layer = 0
        self.z = 0.0
        self.rows: list[TimelineRow] = []
        self.comp = dict.fromkeys(COMPONENTS, 0.0)
        self.phase = dict.fromkeys(PHASES, 0.0)
        self.phase_energy: dict[str, float] = {}
        self.keep_rows = keep_rows
        # Calibrated corrections (1 and 0 for an uncalibrated profile): real motion takes
        # time_scale x the planned time; each M109/M190 wait lasts wait_extra_s longer than
        # the ideal heater model (residency, PID approach).
        self.time_scale = m.time_scale
        self.wait_extra_s = m.wait_extra_s

    def advance(self, dt: float, kind: str, moving: bool, extruded_mm: float = 0.0) -> None:
        """Integrate ``dt`` seconds of ``kind`` (motion takes ``time_scale`` × ``dt``)."""
        if kind == "motion":
            dt *= self.time_scale
        if dt <= 0:
            return
        self.phase[kind] = self.phase.get(kind, 0.0) + dt
        m, el = self.m, self.m.electrical
        e_he = e_bed = 0.0
        h0, b0 = self.he_c, self.bed_c
        if self.thermal:
            g_flow = m.filament.mass_g(extruded_mm) / dt * m.filament.cp_j_per_gk
            self.he_c, e_he = heater_interval(
                m.hotend, self.he_c, self.he_set, dt, g_flow, self.fan
            )
            self.bed_c, e_bed = heater_interval(m.bed, self.bed_c, self.bed_set, dt)
        eta = el.psu_efficiency
        p_el, p_st, p_fan = base_loads_w(el, self.steppers, moving, self.fan)
        parts = (e_bed, e_he, p_el * dt, p_st * dt, p_fan * dt)
        total = 0.0
        for k, v in zip(COMPONENTS, parts, strict=True):
            self.comp[k] += v / eta
            total += v / eta
        self.phase_energy[kind] = self.phase_energy.get(kind, 0.0) + total
        if self.keep_rows:
            self.rows.append(
                TimelineRow(
                    self.t,
                    self.t + dt,
                    kind,
                    self.layer,
                    self.z,
                    self.he_set,
                    0.5 * (h0 + self.he_c),
                    self.bed_set,
                    0.5 * (b0 + self.bed_c),
                    self.fan,
                    total,
                    h0,
                    b0,
                )
            )
        self.t += dt

    def wait(self, heater: str, cool_ok: bool = False) -> None:
        """Wait for ``heater`` ("hotend" or "bed") to reach its set point (:func:`wait_s`),
        then the calibrated residency ``wait_extra_s`` with the heaters holding."""
        hot = heater == "hotend"
        model = self.m.hotend if hot else self.m.bed
        target = self.he_set if hot else self.bed_set
        if target <= 0:
            return
        cur = self.he_c if hot else self.bed_c
        self.advance(wait_s(model, cur, target, cool_ok=cool_ok, name=heater), "wait", False)
        if hot:
            self.he_c = target
        else:
            self.bed_c = target
        # The firmware's residency window applies even at temperature: every wait pays it.
        self.advance(self.wait_extra_s, "wait", False)

    def apply(self, step: Step) -> None:
        """Carry out one schedule step."""
        if isinstance(step, Run):
            self.advance(step.dt_s, step.kind, step.moving, step.extruded_mm)
        elif isinstance(step, Wait):
            if self.thermal:
                self.wait(step.heater, step.cool_ok)
        else:
            if step.hotend_c is not None:
                self.he_set = step.hotend_c
            if step.bed_c is not None:
                self.bed_set = step.bed_c
            if step.fan is not None:
                self.fan = step.fan
            if step.steppers is not None:
                self.steppers = step.steppers

    def play(self, phases: Iterable[tuple[str, Sequence[Step]]]) -> dict[str, float]:
        """Run a schedule of labelled phases; the wall energy of each label (J)."""
        out: dict[str, float] = {}
        for label, steps in phases:
            before = sum(self.comp.values())
            for step in steps:
                self.apply(step)
            out[label] = out.get(label, 0.0) + sum(self.comp.values()) - before
        return out

    @property
    def energy_j(self) -> float:
        return float(sum(self.comp.values()))
