"""Print time of a feature decomposition: speeds, acceleration, cooling slowdown, travel.

Per layer and feature the path length and the number of line pieces are known
(:mod:`.features`). The time of a piece is the trapezoid of the machine's motion
planner: it starts and ends at the junction speed a corner allows (classic jerk),
accelerates at the feature's acceleration and cruises at the feature speed. Slicers
slow small layers down to a minimum layer time; PrusaSlicer caps the feedrate of every
extrusion except bridges at the one value F that stretches the layer (its length /
feedrate estimate) to ``min_layer_time_s``, but not below ``min_print_speed`` — the
same cap is solved here per layer. Travel is :mod:`.travel`'s: the moves between and
inside the islands as paths, with their retractions.

Every function is pure; arrays are NumPy (per-layer values, a few thousand at most).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..motion import trapezoid_time
from .features import BEAD_WIDTH, LayerFeatures
from .settings import PrintSettings

# Which speed/acceleration each feature uses.
_SPEED = {
    "external_perimeter": "v_external_perimeter_mm_s",
    "perimeter": "v_perimeter_mm_s",
    "solid_infill": "v_solid_infill_mm_s",
    "top_solid_infill": "v_top_solid_infill_mm_s",
    "bridge_infill": "v_bridge_mm_s",
    "internal_infill": "v_infill_mm_s",
    "support_material": "v_support_mm_s",
    "support_material_interface": "v_support_interface_mm_s",
    "skirt_brim": "v_first_layer_mm_s",
}
_ACCEL = {
    "external_perimeter": "a_perimeter_mm_s2",
    "perimeter": "a_perimeter_mm_s2",
    "solid_infill": "a_infill_mm_s2",
    "top_solid_infill": "a_infill_mm_s2",
    "bridge_infill": "a_bridge_mm_s2",
    "internal_infill": "a_infill_mm_s2",
    "support_material": "a_default_mm_s2",
    "support_material_interface": "a_default_mm_s2",
    "skirt_brim": "a_first_layer_mm_s2",
}
# Turn-angle intervals (degrees) of the mesh's creases for the corner slowdown.
TURN_BINS_DEG = (20.0, 30.0, 40.0, 50.0, 60.0, 75.0, 90.0, 120.0, 180.0)
_NOT_SLOWED = {"bridge_infill"}  # PrusaSlicer's CoolingBuffer leaves bridges alone
_LINES = {  # zig-zag fills: every line ends in a turn and a short connector
    "solid_infill",
    "top_solid_infill",
    "bridge_infill",
    "support_material",
    "support_material_interface",
}


@dataclass(frozen=True)
class MotionLimits:
    """What the time model needs from the machine's kinematics (mm, mm/s, mm/s²)."""

    max_accel_xy_mm_s2: float = 1000.0
    max_accel_z_mm_s2: float = 200.0
    max_accel_e_mm_s2: float = 5000.0
    accel_retract_mm_s2: float = 1250.0
    max_feedrate_xy_mm_s: float = 200.0
    max_feedrate_z_mm_s: float = 12.0
    jerk_xy_mm_s: float = 8.0
    jerk_z_mm_s: float = 0.4
    jerk_e_mm_s: float = 4.5


@dataclass(frozen=True)
class TimeConstants:
    """Free constants of the geometric time model, fitted to PrusaSlicer 2.5 estimates.

    Fitted on the training parts (``reference_parts.TRAINING``; accuracy is reported on the
    others); ``corners_per_loop`` is an assumption (a rectangle's), used only without a mesh.
    """

    gyroid_piece_mm: float = 3.85  # the wavy gyroid line slows to the jerk speed this often
    corners_per_loop: float = 4.0  # sharp corners of a contour loop (when no mesh is given)
    naive_travel_fraction: float = 0.6  # travel share counted by the cooling estimate


@dataclass
class TimeResult:
    """Seconds per layer and feature (``by_feature``), plus layer totals and the cooling cap."""

    by_feature_s: dict[str, np.ndarray]
    layer_s: np.ndarray
    speed_cap_mm_s: np.ndarray  # the cooling feedrate cap per layer (inf: none)
    start_end_s: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return float(self.layer_s.sum() + self.start_end_s)

    def totals_by_feature_s(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.by_feature_s.items()}


def trapezoid_s(length_mm: Any, v_mm_s: Any, a_mm_s2: Any, v_junction_mm_s: Any) -> Any:
    """Time of a move from ``v_junction`` up to ``v`` (if reachable) and back down (vectorised).

    The planners' move time (:func:`..motion.trapezoid_time`) with equal entry and exit.
    """
    length = np.asarray(length_mm, dtype=float)
    v = np.maximum(np.asarray(v_mm_s, dtype=float), 1e-9)
    a = np.maximum(np.asarray(a_mm_s2, dtype=float), 1e-9)
    vj = np.minimum(np.asarray(v_junction_mm_s, dtype=float), v)
    vj_2 = vj * vj
    with np.errstate(divide="ignore", invalid="ignore"):  # parts of length 0
        return trapezoid_time(length, a, vj_2, vj_2, v * v)


def _cooling_cap(
    lengths: np.ndarray, speeds: np.ndarray, fixed_s: np.ndarray, target_s: float, v_min: float
) -> np.ndarray:
    """Per layer, the feedrate cap F that makes Σ L/min(v, F) + fixed = target (inf: none)."""
    nz = lengths.shape[1]
    naive = (lengths / speeds).sum(axis=0) + fixed_s
    need = naive < target_s
    cap = np.full(nz, np.inf)
    if target_s <= 0 or not need.any():
        return cap
    lo = np.full(nz, v_min)
    hi = np.full(nz, float(speeds.max()))

    def time_at(f: np.ndarray) -> np.ndarray:
        return (lengths / np.minimum(speeds, f[None, :])).sum(axis=0) + fixed_s

    slowest = time_at(lo)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        too_slow = time_at(mid) > target_s
        lo = np.where(too_slow, mid, lo)
        hi = np.where(too_slow, hi, mid)
    f = np.where(slowest <= target_s, v_min, 0.5 * (lo + hi))
    cap[need] = f[need]
    return cap


def layer_times(
    feat: LayerFeatures,
    s: PrintSettings,
    m: MotionLimits | None = None,
    c: TimeConstants | None = None,
    corners_per_layer: np.ndarray | None = None,
) -> TimeResult:
    """Time of every layer by feature, including travel and the cooling slowdown.

    ``corners_per_layer`` (sharp contour corners crossing each layer, from the mesh)
    replaces the constant ``corners_per_loop`` guess where given.
    """
    m = m or MotionLimits()
    c = c or TimeConstants()
    names = [k for k in feat.length_mm if k in _SPEED]
    L, V, A, N = _feature_motion(feat, s, m, c, names)
    from .travel import travel_s  # travel.py builds on this module's trapezoid_s

    tv = travel_s(feat, s, m)
    travel = tv.time_s

    # Cooling slowdown (PrusaSlicer CoolingBuffer): cap adjustable extrusions at F.
    adj = np.array([k not in _NOT_SLOWED for k in names])
    fixed = (L[~adj] / V[~adj]).sum(axis=0) + c.naive_travel_fraction * travel
    cap = _cooling_cap(L[adj], V[adj], fixed, s.min_layer_time_s, s.min_print_speed_mm_s)
    V_eff = np.where(adj[:, None], np.minimum(V, cap[None, :]), V)

    by: dict[str, np.ndarray] = {}
    for i, k in enumerate(names):
        t = _extrusion_s(s, m, k, L[i], V_eff[i], A[i], N[i])
        if k in ("external_perimeter", "perimeter"):
            n_loops = 1 if k == "external_perimeter" else max(s.perimeters - 1, 0)
            t = t + _corners_s(feat, c, n_loops, L[i], V_eff[i], A[i], m, corners_per_layer)
        by[k] = np.where(L[i] > 0, t, 0.0)
    by["travel"] = travel
    layer = sum(by.values())
    return TimeResult(
        by_feature_s=by,
        layer_s=layer,
        speed_cap_mm_s=cap,
        start_end_s=start_end_s(s, m),
        info={
            "retractions": float(tv.retractions.sum()),
            "travels": float(tv.travels.sum()),
            "travel_mm": float(tv.length_mm.sum()),
        },
    )


def _feature_motion(
    feat: LayerFeatures, s: PrintSettings, m: MotionLimits, c: TimeConstants, names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Path length, speed, acceleration and line pieces of each feature per layer
    (arrays ``[feature, layer]``), before the cooling slowdown."""
    nz = feat.nz
    first = np.zeros(nz, dtype=bool)
    first[0] = True
    h_l = np.where(first, s.first_layer_height_mm, s.layer_height_mm)
    L, V, A, N = (np.zeros((len(names), nz)) for _ in range(4))
    for i, k in enumerate(names):
        length = feat.length_mm[k].astype(float).copy()
        pieces = feat.pieces[k].astype(float).copy()
        v = np.full(nz, getattr(s, _SPEED[k]))
        if k in ("external_perimeter", "perimeter"):
            # Loops shorter than 2π·6.5 mm print at the small-perimeter speed: blend by length.
            fs = feat.small_perimeter_fraction
            v = 1.0 / ((1 - fs) / v + fs / s.v_small_perimeter_mm_s)
        if k == "internal_infill" and s.infill_pattern == "gyroid":
            pieces = length / c.gyroid_piece_mm
        if k == "skirt_brim":  # PrusaSlicer prints the skirt at the support speed
            v = np.full(nz, s.v_support_mm_s)
        v = np.where(first, s.v_first_layer_mm_s, v)
        # Volumetric flow and max print speed bound every extrusion.
        w = getattr(s, BEAD_WIDTH[k])
        q = s.spacing_mm(w, s.layer_height_mm) * h_l
        if s.max_volumetric_mm3_s > 0:
            v = np.minimum(v, s.max_volumetric_mm3_s / np.maximum(q, 1e-9))
        v = np.minimum(v, min(s.v_max_print_mm_s, m.max_feedrate_xy_mm_s))
        a = np.full(nz, getattr(s, _ACCEL[k]) or s.a_default_mm_s2)
        a = np.where(first, s.a_first_layer_mm_s2 or a, a)
        L[i], V[i], A[i], N[i] = length, v, np.minimum(a, m.max_accel_xy_mm_s2), pieces
    return L, V, A, N


def _extrusion_s(
    s: PrintSettings,
    m: MotionLimits,
    k: str,
    length: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    pieces: np.ndarray,
) -> np.ndarray:
    """Time of feature ``k``'s line pieces per layer, each a trapezoid between junctions
    (plus, for zig-zag fills, the turn at each line end)."""
    n = np.maximum(pieces, np.where(length > 0, 1.0, 0.0))
    piece = np.where(n > 0, length / np.maximum(n, 1e-9), 0.0)
    # Fill lines run at 45°: the per-axis jerk allows √2 times the jerk at their ends.
    vj = m.jerk_xy_mm_s
    vj_k = vj * math.sqrt(2.0) if k in _LINES or k == "internal_infill" else vj
    t = n * trapezoid_s(piece, v, a, vj_k)
    if k in _LINES:
        # Turn at each line end: a connector about one line spacing long, from rest-ish.
        sp = s.spacing_mm(getattr(s, BEAD_WIDTH[k]), s.layer_height_mm) * math.sqrt(2.0)
        t = t + n * trapezoid_s(sp, v, a, vj_k)
    return t


def _corners_s(
    feat: LayerFeatures,
    c: TimeConstants,
    n_loops: int,
    length: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    m: MotionLimits,
    corners_per_layer: np.ndarray | None,
) -> np.ndarray:
    """Slowing at the sharp corners of ``n_loops`` perimeter loops per contour (from the
    mesh's creased edges when given, else a constant per loop at the jerk speed).

    ``corners_per_layer`` is one count per layer (every corner a stop to the jerk speed) or
    counts by turn angle (columns: the intervals of ``TURN_BINS_DEG``), each slowed to its
    junction speed under classic jerk (:func:`junction_speeds`).
    """
    on = length > 0
    cost = (v - np.minimum(m.jerk_xy_mm_s, v)) ** 2
    if corners_per_layer is None:
        corners = np.maximum(feat.loops, 1) * n_loops * c.corners_per_loop
    elif np.ndim(corners_per_layer) == 1:
        corners = corners_per_layer * n_loops
    else:
        mids = 0.5 * (np.asarray(TURN_BINS_DEG[:-1]) + np.asarray(TURN_BINS_DEG[1:]))
        corners, cost = 1.0, np.zeros_like(v)
        for j, deg in enumerate(mids):
            vj = junction_speeds(math.radians(deg), m.jerk_xy_mm_s)  # over the orientations
            slow = (v[:, None] - np.minimum(vj[None, :], v[:, None])) ** 2
            cost = cost + corners_per_layer[:, j] * n_loops * slow.mean(axis=1)
    return np.where(on, corners * cost / (a * v), 0.0)


def junction_speeds(turn_rad: float, jerk: float, n: int = 90) -> np.ndarray:
    """Junction speed of a path turning by ``turn_rad`` for ``n`` orientations over 90°:
    the largest speed at which each axis's speed jump stays within ``jerk`` (PrusaSlicer's
    classic jerk, :func:`slicer_energy.motion.prusa_junction_vmax`: the difference where an
    axis keeps its direction, the larger speed where it reverses)."""
    phi = (np.arange(n) + 0.5) * (0.5 * math.pi / n)
    a = np.stack([np.cos(phi), np.sin(phi)])
    b = np.stack([np.cos(phi + turn_rad), np.sin(phi + turn_rad)])
    same = a * b >= 0
    jump = np.where(same, np.abs(a - b), np.maximum(np.abs(a), np.abs(b))).max(axis=0)
    return jerk / np.maximum(jump, 1e-12)


def start_end_s(s: PrintSettings, m: MotionLimits) -> float:
    """Moves of the MK3S start and end G-code that a time estimator counts.

    Start: intro line 100 mm at F1000 (PrusaSlicer's MK3S start_gcode); end: lift, park
    (X0 Y200 at F3600) and a further 49 mm lift at F720. Heating waits are not motion
    and are in the energy model, not here.
    """
    intro = float(trapezoid_s(60.0, 1000 / 60, m.max_accel_xy_mm_s2, m.jerk_xy_mm_s))
    intro += float(trapezoid_s(40.0, 1000 / 60, m.max_accel_xy_mm_s2, m.jerk_xy_mm_s))
    park = float(trapezoid_s(150.0, 60.0, m.max_accel_xy_mm_s2, m.jerk_xy_mm_s))
    lift = float(trapezoid_s(50.0, 12.0, m.max_accel_z_mm_s2, m.jerk_z_mm_s))
    return intro + park + lift
