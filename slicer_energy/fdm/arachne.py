"""How many beads PrusaSlicer 2.5's Arachne perimeter generator lays across a thin section.

PrusaSlicer 2.5 (``perimeter_generator = arachne``, its default) insets each island by
half of ``width - spacing`` of the external perimeter and hands the outline to
``Arachne::WallToolPaths`` with beads one line spacing wide (``ext_perimeter_spacing``
outside, ``perimeter_spacing`` inside) and at most ``2 * perimeters`` beads across. Its
beading strategy is ``Limited(Widening(Redistribute(Distributed)))``
(``BeadingStrategyFactory::makeStrategy``); the bead count it picks for a thickness ``T``
of that inset outline steps up at the strategy's transition thicknesses
(``getTransitionThickness``), which are:

* 0 → 1 at ``min_feature_size``, ``WideningBeadingStrategy``;
* 1 → 2 at ``(1 + split) * ext_spacing``, ``RedistributeBeadingStrategy``;
* k → k + 1 (k ≥ 2) at ``2 * ext_spacing`` plus the ``DistributedBeadingStrategy``
  threshold of ``k - 2`` inner beads: ``j * spacing + thr(j) * spacing`` with ``thr`` the
  split threshold for odd ``j`` and the add threshold for even ``j``;
* ``2 * perimeters`` → more (inner walls plus infill) at the optimal thickness of one more
  bead minus 0.01 mm (``LimitedBeadingStrategy``).

``split = 2 * min_bead_width / ext_width - 1`` and ``add = min_bead_width / width``
(``WallToolPaths::generate``, both clamped to 0.01..0.99). ``min_bead_width``,
``min_feature_size`` and ``wall_transition_angle`` are the preset's (PrusaSlicer 2.5's
defaults 85 % and 25 % of the nozzle and 10°, which the MK3S profiles keep). A steep thin
section takes the count of its widest point and keeps it, as offset paths, into its ends
(:func:`carried_beads`). Not modelled: ``SkeletalTrapezoidation`` dissolves a region of one
more bead that rises less than ``wall_transition_filter_deviation`` above its transition
along a slowly varying ("central") ridge, and smooths each step over
``wall_transition_length``; nor is PrusaSlicer's ``classic`` perimeter generator (a preset
that names it gets a warning with the estimate).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import to_numpy
from .grid_ops import GridOps
from .settings import PrintSettings


def central_slope(s: PrintSettings) -> float:
    """A ridge edge is central (its beads follow the local width) where the radius changes
    by less than sin(wall_transition_angle / 2) of its length (updateIsCentral)."""
    return math.sin(math.radians(s.wall_transition_angle_deg) / 2)


def _spacings(s: PrintSettings, h: float, first: bool) -> tuple[float, float, float, float]:
    """External and inner bead width and spacing of a layer ``h`` thick."""
    we = s.w_first_layer_mm if first else s.w_external_perimeter_mm
    wp = s.w_first_layer_mm if first else s.w_perimeter_mm
    return we, wp, s.spacing_mm(we, h), s.spacing_mm(wp, h)


def transition_widths(s: PrintSettings, h: float, first: bool = False) -> np.ndarray:
    """Section widths (mm, of the island before PrusaSlicer's inset) at which Arachne's bead
    count steps from k to k + 1, for k = 0 .. 2 * perimeters (ascending)."""
    we, wp, se, sp = _spacings(s, h, first)
    split = min(max(2 * s.min_bead_width_mm / we - 1, 0.01), 0.99)
    add = min(max(s.min_bead_width_mm / wp, 0.01), 0.99)
    max_beads = 2 * max(s.perimeters, 1)
    # Distributed over the inner beads; one bead only keeps the outer width (makeStrategy).
    w_in = se if max_beads <= 2 else sp
    t = [s.min_feature_size_mm, (1 + split) * se]
    for k in range(2, max_beads):
        j = k - 2
        t.append(2 * se + j * w_in + (split if j % 2 else add) * w_in)
    t.append(2 * se + (max_beads - 1) * w_in - 0.01)
    # The outline Arachne sees is the island inset by (width - spacing) / 2 on each side.
    return np.asarray(t[: max_beads + 1]) + (we - se)


def bead_count(width_mm: np.ndarray | float, widths: np.ndarray) -> np.ndarray:
    """Arachne's bead count across sections ``width_mm`` wide (``widths`` from
    :func:`transition_widths`; the last count means inner walls and infill)."""
    return np.searchsorted(widths, np.asarray(width_mm, dtype=float), side="right")


def carried_beads(
    xp: Any,
    ops: GridOps,
    d: Any,
    on: Any,
    cell: tuple[Any, float, Any, Any],
    widths: list,
    slope: float,
) -> tuple[Any, Any]:
    """Inner beads of the cells ``on`` (flat indices into ``d``) that their thin section's
    widest point hands down, and their length per cell area (mm / mm²; zero where the
    section hands none down).

    ``SkeletalTrapezoidation`` fixes the bead count at the ridge's local maxima from the
    inscribed circle there (``updateBeadCount``: ``getOptimalBeadCount(2 R)``) and hands
    that beading down the steep ridge edges towards the section's ends
    (``propagateBeadingsDownward``): each bead keeps its distance from the outline and ends
    only where the section gets narrower than that (``generateJunctions``), so the ends
    keep the middle's inner beads as offset paths where the local width would give fewer.
    Here a section is one connected region of ``d > t1 - p / 2`` (per layer, 8-connected;
    ``d`` the distance to the outline, mm; ``cell = (t1, p, ridge, local)``: the external
    band's limit per cell ``on``, the pitch, the ridge length and the local counts' bead
    length per cell area), ``R`` its largest ``d``, ``widths`` the transition widths per
    cell ``on`` (:func:`transition_widths`).
    Its ``m = n - 2`` inner beads split the strip between the external beads evenly
    (``Redistribute(Distributed)``): the pair ``j`` on both sides is the contour
    ``d = t1 + (j + 1/2) · 2 (R - t1) / m``, measured by the coarea formula (``|∇d| = 1``)
    as the cells' tent weights ``max(0, 1 - |d - x| / p)`` over ``p``; an odd middle bead
    runs the ridge. Only steep sections hand down: those whose ridge, of length ``L`` (the
    sum of ``ridge``), falls by ``R - t1`` over ``L / 2`` faster than ``slope``
    (:func:`central_slope`);
    in the others the ridge is central and its count follows the local width, and so do
    steep sections whose handed-down beads come out shorter than the local counts' (their
    central part dominates). Sections that reach the count of inner walls and infill hand
    nothing down: their walls are loops.
    """
    t1, p, ridge, local = cell
    zero = xp.zeros(ridge.shape, dtype=xp.float32)
    t_lo = float(xp.min(t1)) if t1.size else 0.0
    # Cells deeper than the widest thin section (plus two cells: their neighbours keep a
    # wide region's count at walls and infill) change no count: left out of the labels.
    deep = float(xp.max(widths[-1])) / 2 + 2 * p if t1.size else 0.0
    lab, n_lab = ops.label((d > t_lo - p / 2) & (d < deep))
    if not n_lab:
        return zero, zero
    lab_on, d_on = lab.ravel()[on], d.ravel()[on]  # ``on``: flat indices into d
    r = ops.label_max(d, lab, n_lab)
    r_on = r[lab_on]
    n_top = sum((2 * r_on >= t).astype(xp.int8) for t in widths)
    # Steep: the ridge falls from R to t1 on either side faster than the transitioning
    # angle's cap (updateIsCentral); a slowly varying ridge keeps the local counts.
    l_ridge = xp.bincount(lab_on, weights=ridge, minlength=n_lab + 1) * p * p
    steep = 2 * (r - t_lo) > slope * l_ridge
    keep = (n_top < len(widths)) & steep[lab_on]
    m = xp.where(keep, xp.maximum(n_top.astype(xp.float32) - 2, 0), 0)
    w_in = 2 * (r_on - t1) / xp.maximum(m, 1)
    length = (m % 2) * ridge
    for j in range(int(to_numpy(m.max())) // 2 if m.size else 0):
        tent = xp.maximum(1 - xp.abs(d_on - t1 - (j + 0.5) * w_in) / p, 0)
        length = length + xp.where(m >= 2 * j + 2, tent / p, 0)
    length = xp.where(m >= 2, length, 0)
    # The central parts of a steep ridge still follow their local width: a section's beads
    # are never shorter than the local counts give.
    more = xp.bincount(lab_on, weights=length - local, minlength=n_lab + 1) > 0
    m = xp.where(more[lab_on], m, 0)
    return m, xp.where(m >= 2, length, 0).astype(xp.float32)
