"""Move time of a trapezoidal speed profile: the one source every time model uses.

A move of length ``d`` enters at ``v0``, accelerates at ``a`` up to the cruise speed
``vc`` (or only to the peak where the accelerating and braking ramps meet, a
triangle), and brakes to ``v1``. :func:`trapezoid_time` is that time; the firmware
planners (:mod:`.gcode.planner`) feed it whole chunks of blocks and the geometric
FDM model (:mod:`.fdm.time`) per-layer arrays of line pieces.

PrusaSlicer's estimator, which :mod:`.gcode.prusa_planner` copies quirk for quirk,
splits the same computation in two steps with its own arithmetic: the profile is set
when a block's neighbours change (:func:`prusa_trapezoid`) and timed when the block
leaves the queue (:func:`prusa_block_time`), possibly from a profile that no longer
matches the block's entry speed. Matching its printed estimate needs those steps as
it does them, so they are kept apart from :func:`trapezoid_time`, once, for the
Python reference and the compiled kernel alike; so is its junction speed between two
blocks (:func:`prusa_junction_vmax`).

Every function here is pure and uses only operations numba compiles, so the compiled
kernels (:mod:`.gcode._kernels`) wrap these very functions with ``numba.njit`` and
give the same doubles.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def trapezoid_time(d: Any, a: Any, v0_2: Any, v1_2: Any, vc_2: Any) -> Any:
    """Seconds for moves of length ``d`` (mm) at acceleration ``a`` (mm/s²) with squared
    entry, exit and cruise speeds (mm²/s²); floats or NumPy arrays alike.

    Where the ramps to and from ``vc`` do not fit in ``d`` the profile is a triangle
    whose peak meets both ramps. Zero-length parts contribute nothing; with NumPy
    arrays, callers silence the divide warnings of the branches not taken.
    """
    d_acc = np.maximum(vc_2 - v0_2, 0.0) / (2 * a)
    d_dec = np.maximum(vc_2 - v1_2, 0.0) / (2 * a)
    short = d_acc + d_dec > d
    peak_2 = np.where(short, np.maximum((2 * a * d + v0_2 + v1_2) * 0.5, 0.0), vc_2)
    peak_2 = np.maximum(peak_2, np.maximum(v0_2, v1_2) * short)  # numerical guard
    # np.minimum(np.maximum(x, 0), d) is np.clip(x, 0, d), which numba lacks for floats
    d_acc = np.where(short, np.minimum(np.maximum((peak_2 - v0_2) / (2 * a), 0.0), d), d_acc)
    d_dec = np.where(short, np.minimum(np.maximum(d - d_acc, 0.0), d), d_dec)
    d_cruise = np.maximum(d - d_acc - d_dec, 0.0)
    v0, v1, vp = np.sqrt(v0_2), np.sqrt(v1_2), np.sqrt(peak_2)
    return (
        np.where(d_acc > 0, 2 * d_acc / (v0 + vp), 0.0)
        + np.where(d_cruise > 0, d_cruise / vp, 0.0)
        + np.where(d_dec > 0, 2 * d_dec / (v1 + vp), 0.0)
    )


def prusa_trapezoid(
    a: float, d: float, entry: float, cruise: float, exit_v: float
) -> tuple[float, float, float]:
    """PrusaSlicer's ``TimeBlock::calculate_trapezoid``: (accelerate until, decelerate
    after, cruise speed reached), distances in mm from the block start.

    ``x if x > y else y`` spells Python's ``max(y, x)`` (and the like for ``min``) so
    that the compiled copy takes the same branch on NaN and signed zeros.
    """
    if a != 0.0:
        acc_d = (cruise * cruise - entry * entry) / (2 * a)
        acc_d = acc_d if acc_d > 0.0 else 0.0
        dec_d = (cruise * cruise - exit_v * exit_v) / (2 * a)
        dec_d = dec_d if dec_d > 0.0 else 0.0
    else:
        acc_d = dec_d = 0.0
    cruise_d = d - acc_d - dec_d
    if cruise_d < 0.0:
        acc_d = (2 * a * d - entry * entry + exit_v * exit_v) / (4 * a) if a != 0.0 else 0.0
        acc_d = 0.0 if 0.0 > acc_d else acc_d
        acc_d = d if d < acc_d else acc_d
        cruise_d = 0.0
        v2 = entry * entry + 2 * a * acc_d
        reached = math.sqrt(v2 if v2 > 0.0 else 0.0)
    else:
        reached = cruise
    return acc_d, acc_d + cruise_d, reached


def prusa_block_time(
    a: float, d: float, entry: float, acc_until: float, dec_after: float, reached: float
) -> float:
    """PrusaSlicer's ``TimeBlock::time()`` of a profile from :func:`prusa_trapezoid`."""
    if a != 0.0:
        v2 = entry * entry + 2 * a * acc_until
        t_acc = (math.sqrt(v2 if v2 > 0.0 else 0.0) - entry) / a
    else:
        t_acc = 0.0
    t_cruise = (dec_after - acc_until) / reached if reached != 0.0 else 0.0
    if a != 0.0:
        v2 = reached * reached - 2 * a * (d - dec_after)
        t_dec = (math.sqrt(v2 if v2 > 0.0 else 0.0) - reached) / -a
    else:
        t_dec = 0.0
    return t_acc + t_cruise + t_dec


def prusa_junction_vmax(
    cruise: float, safe: float, p_feed: float, p_safe: float, p_axis: Any, axis: Any, jerk: Any
) -> float:
    """PrusaSlicer's max entry speed of a block after another (GP:2651-2708): the smaller
    cruise speed, scaled down until every axis's speed jump from the previous block
    (``p_*``, per-axis speeds ``p_axis``) to this one (``axis``) is within ``jerk``; the
    safe speed when both blocks' safe speeds are near it.

    The jump is Marlin's classic jerk as PrusaSlicer copies it: the difference when the
    axis keeps its direction, the larger speed when it reverses or starts/stops.
    """
    larger = p_feed > cruise
    ssf = cruise / p_feed if larger else p_feed / cruise
    vmax = cruise if larger else p_feed
    v_factor = 1.0
    limited = False
    for a in range(4):
        v_exit = p_axis[a]
        v_entry = axis[a]
        if larger:
            v_exit *= ssf
        if limited:
            v_exit *= v_factor
            v_entry *= v_factor
        if v_exit > v_entry:
            if v_entry > 0.0 or v_exit < 0.0:
                j = v_exit - v_entry
            else:
                j = -v_entry if -v_entry > v_exit else v_exit  # max(v_exit, -v_entry)
        elif v_entry < 0.0 or v_exit > 0.0:
            j = v_entry - v_exit
        else:
            j = v_entry if v_entry > -v_exit else -v_exit  # max(-v_exit, v_entry)
        if j > jerk[a]:
            v_factor *= jerk[a] / j
            limited = True
    if limited:
        vmax *= v_factor
    thr = vmax * 0.99
    if p_safe > thr and safe > thr:
        vmax = safe
    return vmax
