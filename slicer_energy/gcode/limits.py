"""How each firmware (and PrusaSlicer's estimator) reads the motion-limit commands.

A :class:`Limits` is the mutable motion state a G-code stream can change
(M201/M203/M204/M205/M220/M221/M566, Klipper SET_VELOCITY_LIMIT). Each
``apply_*`` function interprets one command the way its firmware does; the
rules and line citations are in ``shared/reference/time-estimators.md``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from ..errors import GcodeError
from ..machine import Kinematics
from .words import MAX_PARAM, Event

LIMIT_CMDS = frozenset(
    {"M201", "M203", "M204", "M205", "M220", "M221", "M566", "SET_VELOCITY_LIMIT"}
)


@dataclass
class Limits:
    max_f: list[float]  # X Y Z E mm/s
    max_a: list[float]  # X Y Z E mm/s²
    jerk: list[float]  # X Y Z E mm/s
    acc_print: float
    acc_retract: float
    acc_travel: float
    max_acc_print: float = 0.0  # PrusaSlicer clamps M204 to these (0 = no clamp)
    max_acc_travel: float = 0.0
    min_ext: float = 0.0
    min_travel: float = 0.0
    e_factor: float = 1.0  # M221
    speed_factor: float = 1.0  # M220
    # Klipper
    k_velocity: float = 300.0
    k_accel: float = 3000.0
    k_min_cruise_ratio: float = 0.5
    k_scv: float = 5.0

    def copy(self) -> Limits:
        new = copy.copy(self)
        new.max_f, new.max_a, new.jerk = list(self.max_f), list(self.max_a), list(self.jerk)
        return new


def limits_from_kinematics(k: Kinematics, prusa: bool = False) -> Limits:
    return Limits(
        max_f=list(k.max_feedrate_mm_s),
        max_a=list(k.max_accel_mm_s2),
        jerk=list(k.jerk_mm_s),
        acc_print=k.accel_print_mm_s2,
        acc_retract=k.accel_retract_mm_s2,
        acc_travel=k.accel_travel_mm_s2,
        max_acc_print=k.accel_print_mm_s2 if prusa else 0.0,
        max_acc_travel=k.accel_travel_mm_s2 if prusa else 0.0,
        min_ext=k.min_extruding_rate_mm_s,
        min_travel=k.min_travel_rate_mm_s,
        k_velocity=k.klipper_max_velocity_mm_s,
        k_accel=k.klipper_max_accel_mm_s2,
        k_min_cruise_ratio=k.klipper_minimum_cruise_ratio,
        k_scv=k.klipper_square_corner_velocity_mm_s,
    )


def _axes(ev: Event, target: list[float], scale: float = 1.0) -> None:
    for i, a in enumerate("XYZE"):
        v = ev.params.get(a)
        if v is not None and v == v:
            target[i] = v * scale


def apply_prusa(lim: Limits, ev: Event, flavor_mm_s: bool = True) -> None:
    """PrusaSlicer 2.5 GCodeProcessor (GP:2986-3106, 3151-3166, 3325-3362)."""
    p, c = ev.params, ev.cmd
    if c == "M201":
        _axes(ev, lim.max_a)
    elif c == "M203":
        _axes(ev, lim.max_f, 1.0 if flavor_mm_s else 1 / 60)
    elif c == "M204":
        _prusa_m204(lim, p)
    elif c == "M205":
        if "X" in p:
            lim.jerk[0] = lim.jerk[1] = p["X"]
        if "Y" in p:
            lim.jerk[1] = p["Y"]
        if "Z" in p:
            lim.jerk[2] = p["Z"]
        if "E" in p:
            lim.jerk[3] = p["E"]
        _min_rates(lim, p)
    elif c == "M221":
        if "S" in p and "T" not in p:
            lim.e_factor = p["S"] * 0.01
    elif c == "M566":
        _axes(ev, lim.jerk, 1 / 60)


def _prusa_m204(lim: Limits, p: dict[str, float]) -> None:
    """M204 as PrusaSlicer reads it: S sets print and travel, each clamped to its limit."""

    def clamp(v: float, mx: float) -> float:
        return v if mx == 0 else min(v, mx)

    if "S" in p:
        lim.acc_print = clamp(p["S"], lim.max_acc_print)
        lim.acc_travel = clamp(p["S"], lim.max_acc_travel)
        if "T" in p:
            lim.acc_retract = p["T"]
    else:
        if "P" in p:
            lim.acc_print = clamp(p["P"], lim.max_acc_print)
        if "R" in p:
            lim.acc_retract = p["R"]
        if "T" in p:
            lim.acc_travel = clamp(p["T"], lim.max_acc_travel)


def _min_rates(lim: Limits, p: dict[str, float]) -> None:
    """M205 S / T: the minimum extruding and travel feedrates (Marlin and PrusaSlicer alike)."""
    if "S" in p:
        lim.min_ext = p["S"]
    if "T" in p:
        lim.min_travel = p["T"]


def apply_marlin(lim: Limits, ev: Event) -> None:
    """Marlin 2.1 (M200-M205.cpp, M220/M221)."""
    p, c = ev.params, ev.cmd
    if c == "M201":
        _axes(ev, lim.max_a)
    elif c == "M203":
        _axes(ev, lim.max_f)
    elif c == "M204":
        if "S" in p:
            lim.acc_print = lim.acc_travel = p["S"]
        if "P" in p:
            lim.acc_print = p["P"]
        if "R" in p:
            lim.acc_retract = p["R"]
        if "T" in p:
            lim.acc_travel = p["T"]
    elif c == "M205":
        for i, a in enumerate("XYZE"):
            if a in p:
                lim.jerk[i] = p[a]  # Marlin: X sets X only
        _min_rates(lim, p)
    elif c in ("M220", "M221"):
        _factor(lim, c, p)
    elif c == "M566":
        _axes(ev, lim.jerk, 1 / 60)


def apply_klipper(lim: Limits, ev: Event) -> None:
    """Klipper v0.13 toolhead.py cmd_M204 / SET_VELOCITY_LIMIT, gcode_move M220/M221."""
    p, c = ev.params, ev.cmd
    if c == "M204":
        if "S" in p:
            lim.k_accel = p["S"]
        elif "P" in p and "T" in p:
            lim.k_accel = min(p["P"], p["T"])
        # M204 P alone is rejected by Klipper (TH:661-674): no change.
    elif c == "SET_VELOCITY_LIMIT":
        if "VELOCITY" in p:
            lim.k_velocity = p["VELOCITY"]
        if "ACCEL" in p:
            lim.k_accel = p["ACCEL"]
        if "SQUARE_CORNER_VELOCITY" in p:
            lim.k_scv = p["SQUARE_CORNER_VELOCITY"]
        if "MINIMUM_CRUISE_RATIO" in p:
            lim.k_min_cruise_ratio = p["MINIMUM_CRUISE_RATIO"]
        if "ACCEL_TO_DECEL" in p:
            lim.k_min_cruise_ratio = 1.0 - min(1.0, p["ACCEL_TO_DECEL"] / lim.k_accel)
    elif c in ("M220", "M221"):
        _factor(lim, c, p)


def _factor(lim: Limits, c: str, p: dict[str, float]) -> None:
    """M220 S (speed) / M221 S (flow) in percent, as Marlin and Klipper read them."""
    if "S" in p:
        if c == "M220":
            lim.speed_factor = p["S"] * 0.01
        else:
            lim.e_factor = p["S"] * 0.01


# PrusaSlicer built-in limits when machine_limits_usage = ignore (PC:1674-1679, 1738-1781).
PRUSA_DEFAULTS = Kinematics(
    max_feedrate_mm_s=(500.0, 500.0, 12.0, 120.0),
    max_accel_mm_s2=(9000.0, 9000.0, 500.0, 10000.0),
    accel_print_mm_s2=1500.0,
    accel_retract_mm_s2=1500.0,
    accel_travel_mm_s2=1500.0,
    jerk_mm_s=(10.0, 10.0, 0.2, 2.5),
)


def prusa_kinematics_from_config(cfg: dict[str, str]) -> Kinematics | None:
    """Normal-mode limits from a PrusaSlicer G-code's trailing config block (GP:1296-1306).

    Returns None when the file has no such block (then the printer profile is used).
    """
    if "machine_max_feedrate_x" not in cfg:
        return None
    usage = cfg.get("machine_limits_usage", "time_estimate_only")
    flavor = cfg.get("gcode_flavor", "marlin")
    if usage == "ignore" or flavor not in ("marlin", "marlin2", "reprapfirmware"):
        return PRUSA_DEFAULTS

    def first(key: str, default: float) -> float:
        v = cfg.get(key)
        if v is None or v == "":
            return default
        try:
            x = float(v.split(",")[0])
        except ValueError:
            x = math.nan
        if not 0 <= x <= MAX_PARAM:
            raise GcodeError(
                f"PrusaSlicer config block: {key} = {v!r}; accepted: a number from 0 to "
                f"{MAX_PARAM:g}"
            )
        return x

    acc_e = first("machine_max_acceleration_extruding", 0.0) or 1500.0
    acc_r = first("machine_max_acceleration_retracting", 0.0) or 1500.0
    acc_t = first("machine_max_acceleration_travel", 0.0) or 1250.0
    if flavor == "marlin":  # Marlin legacy: travel acceleration is the extruding one
        acc_t = acc_e
    return Kinematics(
        max_feedrate_mm_s=tuple(first(f"machine_max_feedrate_{a}", 0.0) for a in "xyze"),
        max_accel_mm_s2=tuple(first(f"machine_max_acceleration_{a}", 0.0) for a in "xyze"),
        accel_print_mm_s2=acc_e,
        accel_retract_mm_s2=acc_r,
        accel_travel_mm_s2=acc_t,
        jerk_mm_s=tuple(first(f"machine_max_jerk_{a}", 0.0) for a in "xyze"),
        min_extruding_rate_mm_s=0.0
        if flavor == "reprapfirmware"
        else first("machine_min_extruding_rate", 0.0),
        min_travel_rate_mm_s=0.0
        if flavor == "reprapfirmware"
        else first("machine_min_travel_rate", 0.0),
    )
