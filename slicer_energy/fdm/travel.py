"""Travel as paths: the moves between and inside a layer's islands, and their retractions.

PrusaSlicer 2.5's G-code generator (``GCode::process_layer``) prints a layer's support
areas, then the object's islands one after the other in a fixed order
(``Layer::make_slices`` chains the islands with ``chain_points``, a greedy shortest path
that does not depend on where the previous layer ended), each island whole: its perimeter
loops, then every separate area of every fill region. Each jump between those is a travel at
``travel_speed``; a travel longer than ``retract_before_travel`` retracts first
(``GCode::needs_retraction``; the MK3S profiles have ``only_retract_when_crossing_perimeters``
and ``avoid_crossing_perimeters`` off), with a wipe, a z-lift, and after the move the lift
lowered and the filament primed again. A layer change retracts when
``retract_layer_change`` is on.

Here the islands and support areas are points (their centroids, from the grid), chained
nearest-neighbour from one end of the layer (the point farthest from the layer's centre, as
a greedy chain's ends are its outliers). A jump from island A to island B moves from where
A's last fill ended to B's perimeter seam: modelled as ``hypot(d, r_B)`` (``d`` the centroid
distance, ``r_B`` B's equivalent radius ``sqrt(area/π)``: an assumption, exact for neither
but right when the islands are far apart and when they are the same island on the next
layer). An island's holes are points too, visited right after it, chained nearest-neighbour
from it: a hop to a hole lands on its loop, ``hypot(d, r)``, the first one's ``R - r``
inside the island's outline (``R`` the equivalent radius of the island with its holes: a
tube's wall; an assumption like ``r_B``). Inside an island, each fill area, and each loop
beyond the islands' and holes' contours, costs one travel of the layer's mean fill area's
equivalent radius (an assumption: from the seam or the last fill to the next fill's nearest
end), and a zig-zag
fill around a hole one more (its lines on the two sides of the hole are chained apart,
``FillRectilinear``'s monotonic regions). The loops of one contour are joined by a short
travel of one perimeter spacing, which never retracts, and with more than one perimeter
every external loop (each separate external band of the grid) ends with a travel of one
nozzle diameter into the part (``GCode::extrude_loop``, "move inwards before travel"; it
never retracts either).

Every move is the planner's trapezoid at the configured speed, acceleration and jerk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .features import LayerFeatures
from .regions import FILL_REGIONS
from .settings import PrintSettings
from .time import MotionLimits, trapezoid_s

# PrusaSlicer 2.5 Wipe::wipe: the wipe moves back along the last extrusion at 80 % of the
# travel speed, for as long as the retraction would take at retract_speed.
WIPE_SPEED_FRACTION = 0.8
# Extra travels of a solid (zig-zag) fill per hole in it: the lines on the two sides of a
# hole form two monotonic regions chained apart (FillRectilinear), one more start each side.
TRAVELS_PER_FILL_HOLE = 1.0
# Above this many islands in a layer the nearest-neighbour chain (O(n²)) gives way to a
# serpentine order in strips of the layer's mean island spacing (O(n log n)).
_NN_MAX = 400


@dataclass
class TravelResult:
    """Per layer: travel seconds (moves, retractions, lifts, layer change), retracting
    travels, all travels and their length in mm."""

    time_s: np.ndarray
    retractions: np.ndarray
    travels: np.ndarray
    length_mm: np.ndarray


def retraction_s(s: PrintSettings, m: MotionLimits) -> float:
    """Seconds of one retraction cycle around a travel: wipe (or retract), lift, lower, prime."""
    a_e = min(m.accel_retract_mm_s2, m.max_accel_e_mm_s2)
    prime = float(trapezoid_s(s.retract_mm, s.retract_speed_mm_s, a_e, m.jerk_e_mm_s))
    t = prime if s.retract_mm > 0 else 0.0
    if s.wipe and s.retract_mm > 0:
        v_w = WIPE_SPEED_FRACTION * min(s.v_travel_mm_s, m.max_feedrate_xy_mm_s)
        l_w = s.retract_mm / s.retract_speed_mm_s * v_w
        a = min(s.a_default_mm_s2, m.max_accel_xy_mm_s2)
        t += float(trapezoid_s(l_w, v_w, a, m.jerk_xy_mm_s))
    else:
        t += prime
    if s.retract_lift_mm > 0:
        vz = min(s.v_travel_z_mm_s, m.max_feedrate_z_mm_s)
        t += 2 * float(trapezoid_s(s.retract_lift_mm, vz, m.max_accel_z_mm_s2, m.jerk_z_mm_s))
    return t


def chain(points: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Visit order of ``points`` (n, 2): nearest neighbour from the end farthest from their
    centre (or from the point nearest ``start``)."""
    n = len(points)
    if n <= 1:
        return np.arange(n)
    ref = points.mean(axis=0) if start is None else start
    d0 = np.hypot(*(points - ref).T)
    first = int(np.argmax(d0) if start is None else np.argmin(d0))
    if n > _NN_MAX:
        return _serpentine(points, first)
    left = np.ones(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    cur = first
    for i in range(n):
        order[i] = cur
        left[cur] = False
        if i + 1 < n:
            d = np.hypot(*(points - points[cur]).T)
            d[~left] = np.inf
            cur = int(np.argmin(d))
    return order


def _serpentine(points: np.ndarray, first: int) -> np.ndarray:
    """Strips along x, alternating direction, starting at the strip of ``points[first]``."""
    span = np.ptp(points, axis=0)
    strip = max(float(np.sqrt(span[0] * span[1] / len(points))), 1e-6)
    row = np.floor((points[:, 1] - points[:, 1].min()) / strip).astype(np.int64)
    if row[first] > row.max() / 2:
        row = row.max() - row
    x = np.where(row % 2 == 0, points[:, 0], -points[:, 0])
    return np.lexsort((x, row))


def layer_travels(feat: LayerFeatures, s: PrintSettings) -> tuple[np.ndarray, np.ndarray]:
    """Every travel's layer and length (mm), in print order per layer."""
    layers: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    last: np.ndarray | None = None
    sp = s.spacing_mm(s.w_perimeter_mm, s.layer_height_mm)
    fill_area = sum(feat.area_mm2[name] for name in FILL_REGIONS)
    for k in range(feat.nz):
        isl = feat.islands_at.get(k, np.zeros((0, 3)))
        sup = feat.supports_at.get(k, np.zeros((0, 3)))
        hol = feat.holes_at.get(k, np.zeros((0, 4)))
        sup = sup[chain(sup[:, :2])]
        sup = np.column_stack([sup[:, :2], np.sqrt(sup[:, 2] / math.pi)])
        pts = np.concatenate([sup, _with_holes(isl, hol)])  # [[x, y, r], ...]
        if not len(pts):
            continue
        r = pts[:, 2]
        prev = np.concatenate([pts[:1, :2] if last is None else last[None], pts[:-1, :2]])
        jumps = np.hypot(np.hypot(*(pts[:, :2] - prev).T), r)
        last = pts[-1, :2]
        r_in = math.sqrt(fill_area[k] / max(feat.fill_parts[k], 1) / math.pi)
        n_in = (
            max(feat.loops[k] - feat.islands[k] - len(hol), 0)
            + feat.fill_parts[k]
            + TRAVELS_PER_FILL_HOLE * feat.fill_holes[k]
        )
        # An island's one inner path starts next to its loop (a short hop); in an island
        # with more (Arachne's thin sections: middle beads and loops of their own) each
        # starts where the last path did not end: one travel of the layer's mean island
        # radius (an assumption, like r_in). The paths beyond one per island are taken to
        # be in different islands as far as they go (a lower bound on those islands).
        n_extra = max(feat.inner_paths[k] - feat.islands[k], 0)
        n_multi = min(n_extra, feat.islands[k])
        n_open = n_extra + n_multi
        n_short = max(feat.loops[k] * max(s.perimeters - 1, 0) - n_multi, 0)
        r_open = math.sqrt(float(isl[:, 2].mean()) / math.pi) if len(isl) else 0.0
        inner = np.concatenate(
            [
                np.full(int(round(n_in)), r_in),
                np.full(int(round(n_open)), r_open),
                np.full(int(n_short), sp),
            ]
        )
        inward = np.full(int(feat.loops[k]) if s.perimeters > 1 else 0, s.nozzle_mm)
        here = np.concatenate([jumps, inner, inward])
        layers.append(np.full(len(here), k))
        lengths.append(here)
    if not layers:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(layers), np.concatenate(lengths)


def _with_holes(isl: np.ndarray, hol: np.ndarray) -> np.ndarray:
    """A layer's islands ``[[x, y, area], ...]`` in chain order, each followed by its holes
    (``[[x, y, area, island], ...]``) chained from the island's point, as
    ``[[x, y, r], ...]``: the radius term of the travel that lands there (:func:`layer_travels`).

    PrusaSlicer prints an island's loops, its holes' among them, before it moves on. A
    travel to an island or from hole to hole lands on a loop of the area's equivalent radius
    ``r``; the first hole's loop lies ``R - r`` inside the island's outline (``R`` from the
    island's and its holes' areas), where the island's seam is, as for a tube's wall."""
    order = chain(isl[:, :2])
    out = isl[order].copy()
    out[:, 2] = np.sqrt(out[:, 2] / math.pi)
    if not len(hol):
        return out
    owner = hol[:, 3].astype(np.int64)
    assert ((owner >= 0) & (owner < len(isl))).all(), "a hole outside every island"
    by = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[by], np.arange(len(isl) + 1))
    parts = []
    for j, i in enumerate(order):
        parts.append(out[j : j + 1])
        mine = hol[by[bounds[i] : bounds[i + 1]], :3]
        if len(mine):
            mine = mine[chain(mine[:, :2], start=isl[i, :2])].copy()
            r_out = math.sqrt((isl[i, 2] + mine[:, 2].sum()) / math.pi)
            mine[:, 2] = np.sqrt(mine[:, 2] / math.pi)
            mine[0, 2] = max(r_out - mine[0, 2], 0.0)
            parts.append(mine)
    return np.concatenate(parts)


def travel_s(feat: LayerFeatures, s: PrintSettings, m: MotionLimits) -> TravelResult:
    """Travel time per layer: the one place travel and retractions are counted.

    Each travel is a trapezoid at ``travel_speed`` (and the default acceleration: PrusaSlicer
    2.5 has no travel acceleration of its own), plus a retraction cycle where it is longer
    than ``retract_before_travel``; the first travel of each layer is the layer change (a
    retraction when ``retract_layer_change`` is on, and the z step).
    """
    nz = feat.nz
    k, length = layer_travels(feat, s)
    v = min(s.v_travel_mm_s, m.max_feedrate_xy_mm_s)
    a = min(s.a_default_mm_s2, m.max_accel_xy_mm_s2)
    t_move = trapezoid_s(length, v, a, m.jerk_xy_mm_s)
    first = np.ones(len(k), dtype=bool)
    first[1:] = k[1:] != k[:-1]
    retract = length >= s.retract_min_travel_mm
    if s.retract_on_layer_change:
        retract |= first
    t = t_move + retract * retraction_s(s, m)
    vz = min(s.v_travel_z_mm_s, m.max_feedrate_z_mm_s)
    t_z = float(trapezoid_s(s.layer_height_mm, vz, m.max_accel_z_mm_s2, m.jerk_z_mm_s))
    t = t + first * t_z
    return TravelResult(
        time_s=np.bincount(k, weights=t, minlength=nz)[:nz],
        retractions=np.bincount(k, weights=retract.astype(float), minlength=nz)[:nz],
        travels=np.bincount(k, minlength=nz)[:nz].astype(float),
        length_mm=np.bincount(k, weights=length, minlength=nz)[:nz],
    )
