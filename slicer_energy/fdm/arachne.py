"""How many beads PrusaSlicer 2.5's Arachne perimeter generator lays across a thin section.

PrusaSlicer 2.5 (``perimeter_generator = arachne``, its default) insets each island by
half of ``width - spacing`` of the external perimeter and hands the outline to
``Arachne::WallToolPaths`` with beads one line spacing wide (``ext_perimeter_spacing``
outside, ``perimeter_spacing`` inside) and at most ``2 * perimeters`` beads across. Its
beading strategy is ``Limited(Widening(Redistribute(Distributed)))``
(``BeadingStrategyFactory::makeStrategy``); the bead count it picks for a thickness ``T``
of that inset outline steps up at the strategy's transition thicknesses
(``getTransitionThickness``), which are:

* 0 → 1 at ``min_feature_size`` (25 % of the nozzle), ``WideningBeadingStrategy``;
* 1 → 2 at ``(1 + split) * ext_spacing``, ``RedistributeBeadingStrategy``;
* k → k + 1 (k ≥ 2) at ``2 * ext_spacing`` plus the ``DistributedBeadingStrategy``
  threshold of ``k - 2`` inner beads: ``j * spacing + thr(j) * spacing`` with ``thr`` the
  split threshold for odd ``j`` and the add threshold for even ``j``;
* ``2 * perimeters`` → more (inner walls plus infill) at the optimal thickness of one more
  bead minus 0.01 mm (``LimitedBeadingStrategy``).

``split = 2 * min_bead_width / ext_width - 1`` and ``add = min_bead_width / width``
(``WallToolPaths::generate``, both clamped to 0.01..0.99), ``min_bead_width`` 85 % of the
nozzle. Not modelled: ``SkeletalTrapezoidation`` dissolves a region of one more bead
that rises less than ``wall_transition_filter_deviation`` above its transition along a
slowly varying ("central") ridge, and smooths each step over ``wall_transition_length``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .settings import PrintSettings

# PrusaSlicer 2.5 defaults (PrintConfig.cpp; the MK3S profiles keep them), as fractions of
# the nozzle diameter.
MIN_BEAD_WIDTH = 0.85
MIN_FEATURE_SIZE = 0.25


def _spacings(s: PrintSettings, h: float, first: bool) -> tuple[float, float, float, float]:
    """External and inner bead width and spacing of a layer ``h`` thick."""
    we = s.w_first_layer_mm if first else s.w_external_perimeter_mm
    wp = s.w_first_layer_mm if first else s.w_perimeter_mm
    return we, wp, s.spacing_mm(we, h), s.spacing_mm(wp, h)


def transition_widths(s: PrintSettings, h: float, first: bool = False) -> np.ndarray:
    """Section widths (mm, of the island before PrusaSlicer's inset) at which Arachne's bead
    count steps from k to k + 1, for k = 0 .. 2 * perimeters (ascending)."""
    we, wp, se, sp = _spacings(s, h, first)
    d = s.nozzle_mm
    split = min(max(2 * MIN_BEAD_WIDTH * d / we - 1, 0.01), 0.99)
    add = min(max(MIN_BEAD_WIDTH * d / wp, 0.01), 0.99)
    max_beads = 2 * max(s.perimeters, 1)
    # Distributed over the inner beads; one bead only keeps the outer width (makeStrategy).
    w_in = se if max_beads <= 2 else sp
    t = [MIN_FEATURE_SIZE * d, (1 + split) * se]
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


def central_counts(xp: Any, ndi: Any, d: Any, thin: Any, on: Any, widths: list, struct: Any) -> Any:
    """Bead count of the cells ``on`` from the widest point of their thin section.

    ``SkeletalTrapezoidation`` fixes the bead count at the ridge's local maxima from the
    inscribed circle there (``updateBeadCount``: ``getOptimalBeadCount(2 R)``) and hands
    that beading down the steep ridge edges towards the section's ends
    (``propagateBeadingsDownward``): each bead keeps its distance from the outline and ends
    only where the section gets narrower than that (``generateJunctions``), so the ends
    keep the middle's inner beads as offset paths where the local width would give fewer.
    Here a section is one connected region of ``thin`` (per layer, ``struct``), ``R`` its
    largest distance to the outline ``d`` (mm), and ``widths`` the transition widths per
    cell ``on`` (:func:`transition_widths`).
    """
    lab, n_lab = ndi.label(thin, structure=struct)
    r = xp.zeros(int(n_lab) + 1, dtype=xp.float64)
    if n_lab:
        r[1:] = xp.asarray(ndi.maximum(d, lab, xp.arange(1, int(n_lab) + 1)), dtype=xp.float64)
    w = 2 * r[lab[on]]
    return sum((w >= t).astype(xp.int8) for t in widths)
