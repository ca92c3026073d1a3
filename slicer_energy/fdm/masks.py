"""Per-layer mask and distance primitives of the feature decomposition (NumPy or CuPy).

Masks are boolean arrays ``[layer, row, column]`` (or one layer, ``[row, column]``); nothing
here connects cells across layers. ``ops`` are the labelling and distance transforms for the
array module (:func:`.grid_ops.ops_for`), ``p`` the cell pitch in mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import array_module, to_numpy
from .grid_ops import GridOps


def layer_bounds(labels: Any) -> np.ndarray:
    """Per layer of ``labels``, the largest label in it or in any layer below (host int64).

    :meth:`.grid_ops.GridOps.label` numbers components in raster order and never across
    layers, so the labels of layer ``k`` are ``hi[k-1] + 1 .. hi[k]``: one max per layer
    gives every label's layer, with no grid-sized scatter or index arrays.
    """
    n = labels.shape[0]
    if labels.size == 0:
        return np.zeros(n, dtype=np.int64)
    mx = to_numpy(labels.reshape(n, -1).max(axis=1)).astype(np.int64)
    return np.maximum.accumulate(mx)


def label_layers(hi: np.ndarray, n: int) -> np.ndarray:
    """Layer (index into the labelled slab) of each label ``1..n`` (see :func:`layer_bounds`)."""
    return np.searchsorted(hi, np.arange(1, n + 1), side="left")


@dataclass(frozen=True)
class Labels:
    """Components of a ``[layer, row, column]`` mask labelled on its compact part: only the
    layers with any cell (``layers``, host indices into the mask), cropped to their common
    bounding box grown by one cell (its first row and column ``y0``, ``x0``). Labels never
    span layers, so this labels the same components on fewer cells, in the same order."""

    lab: Any
    n: int
    layers: np.ndarray
    y0: int = 0
    x0: int = 0

    def layer_of(self) -> np.ndarray:
        """Layer (index into the mask) of each label ``1..n``."""
        return self.layers[label_layers(layer_bounds(self.lab), self.n)]


def label_compact(ops: GridOps, xp: Any, mask: Any, y0: int = 0, x0: int = 0) -> Labels:
    """:class:`Labels` of ``mask`` (itself a window from row ``y0``, column ``x0``); no
    cells, no labels."""
    layers, sub, (ys, xs) = _compact(xp, mask)
    if layers.size == 0:
        return Labels(xp.zeros((0,) + mask.shape[1:], dtype=xp.int32), 0, layers)
    lab, n = ops.label(sub[:, ys, xs])
    return Labels(lab, n, layers, y0 + ys.start, x0 + xs.start)


def _compact(xp: Any, mask: Any) -> tuple[np.ndarray, Any, tuple[slice, slice]]:
    """The layers of ``mask`` with any cell (host indices), those layers, and the rows and
    columns of their common bounding box grown by one cell (empty slices where none)."""
    layers = np.flatnonzero(to_numpy(mask.any(axis=(1, 2))))
    if layers.size == 0:
        return layers, mask[:0], (slice(0, 0), slice(0, 0))
    sub = mask if layers.size == mask.shape[0] else mask[xp.asarray(layers)]
    return layers, sub, _window(sub.any(axis=0), 0.0, 1.0)


def label_sums(xp: Any, c: Labels) -> tuple[Any, Any, Any]:
    """Cells, and sums of their column and row indices (from ``x0``, ``y0``), per label
    ``1..n`` (float64).

    Summed over the runs of each row (a run from column a to b holds b - a + 1 cells with
    columns summing to (a + b)(b - a + 1) / 2), not cell by cell: compact regions have
    few runs. Every sum is a whole number, so the order of summation changes nothing.
    """
    L, n = c.lab, c.n
    w = L.shape[2]
    ends = L > 0
    new = L[:, :, 1:] != L[:, :, :-1]
    starts = ends.copy()
    starts[:, :, 1:] &= new
    ends[:, :, :-1] &= new
    fs = xp.flatnonzero(starts)  # the k-th start and the k-th end bound the k-th run
    row, a = xp.divmod(fs, w)
    ln = xp.flatnonzero(ends) % w - a + 1
    lab = L.ravel()[fs]
    sx_w = (2 * (a + c.x0) + ln - 1) * ln // 2
    sy_w = (row % L.shape[1] + c.y0) * ln
    return tuple(xp.bincount(lab, weights=v, minlength=n + 1)[1:] for v in (ln, sx_w, sy_w))


def label_cells(xp: Any, c: Labels) -> Any:
    """Cells per label ``1..n`` (int64): a count over the labelled cells only, cheaper than
    :func:`label_sums` where the sums of indices are not wanted."""
    L = c.lab
    return xp.bincount(L[L > 0].ravel(), minlength=c.n + 1)[1:]


def components(xp: Any, c: Labels, k0: int, p: float) -> list[tuple[int, Any]]:
    """Each labelled component's layer (``k0`` + its slab index) and its centroid and area,
    as ``(layer, array [[x_mm, y_mm, area_mm2], ...])`` for every layer that has any.

    The labelled mask is a padded ``[layer, row, column]`` slab (one cell of border), ``p``
    the cell pitch; the centroid is in mm from the unpadded grid's corner.
    """
    if c.n == 0:
        return []
    return _by_layer(c.layer_of(), _centroids(xp, c, p), k0)


def _centroids(xp: Any, c: Labels, p: float) -> np.ndarray:
    """``[[x_mm, y_mm, area_mm2], ...]`` of labels ``1..n`` (host), as :func:`components`."""
    cnt, sx, sy = (to_numpy(v) for v in label_sums(xp, c))
    # cell (j, i) of the padded slab has its centre at ((i - 1 + 0.5) p, (j - 1 + 0.5) p)
    return np.stack([(sx / cnt - 0.5) * p, (sy / cnt - 0.5) * p, cnt * p * p], axis=1)


def _by_layer(lay: np.ndarray, rows: np.ndarray, k0: int) -> list[tuple[int, np.ndarray]]:
    """``rows`` split by their (ascending) layer ``lay``, as ``(k0 + layer, rows)``."""
    cuts = np.flatnonzero(np.diff(lay)) + 1
    parts = zip(np.split(lay, cuts), np.split(rows, cuts), strict=True)
    return [(k0 + int(lk[0]), part) for lk, part in parts]


def edt_layers(ops: GridOps, xp: Any, mask: Any, p: float) -> Any:
    """In-plane distance (mm) from each cell centre to the layer's contour, layer by layer.

    The EDT gives the distance to the nearest empty cell centre; the contour lies about
    half a cell before it. Per-layer 2-D transforms are ~3x faster than one 3-D transform
    with an infinite z sampling, and never mix layers; a layer equal to the one below
    reuses its transform. On the CPU each transform runs on the layer's bounding box grown
    by one cell, which is exact: the nearest empty cell to a cell inside is never farther
    than that ring of empty cells (clamping it onto the box only brings it closer).
    """
    out = xp.empty(mask.shape, dtype=xp.float32)
    crop = xp is np
    n = mask.shape[0]
    same = same_as_below(mask)  # prismatic parts repeat their section: reuse the transform
    if crop:  # every layer's occupied rows and columns, in two passes
        rows, cols = mask.any(axis=2), mask.any(axis=1)
    for k in range(n):
        if same[k]:
            out[k] = out[k - 1]
        elif crop:
            out[k] = 0.0
            win = _box(rows[k], cols[k], 1)
            if win is not None:
                out[k][win] = ops.edt(mask[k][win])
        else:
            out[k] = ops.edt(mask[k])
    out *= p
    out -= p / 2
    return out


def same_as_below(mask: Any) -> np.ndarray:
    """Per layer of ``mask``, whether it equals the layer below (host bool; layer 0: False)."""
    same = np.zeros(mask.shape[0], dtype=bool)
    if mask.shape[0] > 1:
        same[1:] = to_numpy((mask[1:] == mask[:-1]).all(axis=(1, 2)))
    return same


def beyond(xp: Any, d: Any, t: Any, p: float) -> np.ndarray:
    """Per layer, the number of cells beyond distance ``t``, counting partial cells.

    A cell whose centre is at distance ``d`` covers ``d ± p/2``; the fraction of it beyond
    ``t`` is ``clip((d − t)/p + 1/2, 0, 1)``. This keeps band areas accurate to well under
    a cell width, so coarse grids still measure perimeters correctly.
    """
    return to_numpy(fraction_beyond(xp, d, t, p).sum(axis=(1, 2)))


def fraction_beyond(xp: Any, d: Any, t: Any, p: float) -> Any:
    """``clip((d - t) / p + 0.5, 0, 1)``: the fraction of each cell beyond ``t``, computed
    in place on one new array (the same float32 steps, no window-sized temporaries)."""
    f = d - t
    f /= p
    f += 0.5
    return xp.clip(f, 0.0, 1.0, out=f)


def runs(mask: Any, axis: int = 2) -> Any:
    """Run starts per layer of ``mask`` (nz, ny, nx) along the rows (x; ``axis=1``: columns).

    A one-cell gap does not start a new run: staircase edges of a voxelised outline
    would otherwise split one chord of the region into many. Rows (not the 45° fill
    direction itself) are used because a staircase along a diagonal splits chords at every
    step; for compact regions the chord count differs little between directions.
    """
    n = mask.shape[axis]

    def cut(a: int, b: int) -> tuple[slice, ...]:
        idx = [slice(None)] * 3
        idx[axis] = slice(a, b)
        return tuple(idx)

    before = array_module(mask).zeros_like(mask)  # a cell one or two before is set
    before[cut(1, n)] = mask[cut(0, n - 1)]
    before[cut(2, n)] |= mask[cut(0, n - 2)]
    return (mask > before).sum(axis=(1, 2))


@dataclass(frozen=True)
class _Background:
    """The background of a mask's compact part (:func:`_compact`) labelled, and which labels
    are holes: not connected to the border of their layer (label 0, the mask's own cells,
    counts as border)."""

    layers: np.ndarray
    lab: Any
    n: int
    is_border: Any  # per label 0..n
    layer: np.ndarray  # per label 1..n, its index among ``layers``

    @property
    def hole(self) -> np.ndarray:
        """Per label 1..n, whether it is a hole (host bool)."""
        return ~to_numpy(self.is_border[1:])


def _background(ops: GridOps, xp: Any, mask: Any) -> _Background | None:
    """Only layers with cells can have holes, and only inside their bounding box grown by
    one cell: the background outside it all reaches the layer's border, so the crop's border
    stands for the layer's. None where ``mask`` has no cell."""
    layers, sub, (ys, xs) = _compact(xp, mask)
    if layers.size == 0:
        return None
    lab, n = ops.label(~sub[:, ys, xs])
    border = xp.zeros(n + 1, dtype=bool)
    border[0] = True
    for edge in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        border[edge.ravel()] = True
    return _Background(layers, lab, n, border, label_layers(layer_bounds(lab), n))


def count_holes(ops: GridOps, xp: Any, mask: Any) -> np.ndarray:
    """The number of in-plane holes per layer of ``mask``: background not connected to the
    border of its layer."""
    bg = _background(ops, xp, mask)
    if bg is None:
        return np.zeros(mask.shape[0], dtype=np.int64)
    return np.bincount(bg.layers[bg.layer[bg.hole]], minlength=mask.shape[0])


def hole_components(
    ops: GridOps, xp: Any, mask: Any, islands: Labels, k0: int, p: float
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """:func:`count_holes` of ``mask`` (a padded slab, its window from ``islands.y0``,
    ``.x0``), and for every layer with any, ``[[x_mm, y_mm, area_mm2, island], ...]``: each
    hole's centroid and area (as :func:`components`) and the index, among its layer's
    islands in label order, of the island around it. ``islands`` are the components of the
    same ``mask`` (:func:`label_compact`), so both share one compact frame.

    A hole's first cell in raster order lies on its top row; the cell above it is the
    island's, since any other background cell there would be part of the hole.
    """
    nz = mask.shape[0]
    bg = _background(ops, xp, mask)
    if bg is None:
        return np.zeros(nz, dtype=np.int64), {}
    keep = bg.hole
    lay_h = bg.layer[keep]
    counts = np.bincount(bg.layers[lay_h], minlength=nz)
    if not keep.any():
        return counts, {}
    # A label's first cell starts a row run: only the runs' starts are searched (ascending),
    # and the first start of each hole label (a stable sort's first index) is its first cell.
    L = bg.lab
    starts = L > 0
    starts[:, :, 1:] &= L[:, :, 1:] != L[:, :, :-1]
    fs = xp.flatnonzero(starts)
    fs = fs[~bg.is_border[L.ravel()[fs]]]
    _, first = xp.unique(L.ravel()[fs], return_index=True)
    parent = to_numpy(islands.lab.ravel()[fs[first] - L.shape[2]])  # the cell above
    hi = layer_bounds(islands.lab)  # island labels of compact layer j: hi[j-1]+1 .. hi[j]
    index = parent.astype(np.int64) - 1 - np.where(lay_h > 0, hi[np.maximum(lay_h - 1, 0)], 0)
    c = Labels(bg.lab, bg.n, bg.layers, islands.y0, islands.x0)
    rows = np.column_stack([_centroids(xp, c, p)[keep], index.astype(float)])
    return counts, dict(_by_layer(bg.layers[lay_h], rows, k0))


def _window(mask: Any, r_mm: float, p: float) -> tuple[slice, slice] | None:
    """Rows and columns of the bounding box of ``mask`` (2-D) grown by ``r_mm`` and one
    cell, clipped to the layer; None for an empty mask."""
    r = int(math.ceil(r_mm / p)) + 1
    return _box(mask.any(axis=1), mask.any(axis=0), r)


def _box(row_any: Any, col_any: Any, r: int) -> tuple[slice, slice] | None:
    """The rows and columns with any cell (flags per row and column), grown by ``r``
    cells and clipped; None where there are none."""
    rows = np.flatnonzero(to_numpy(row_any))
    cols = np.flatnonzero(to_numpy(col_any))
    if rows.size == 0:
        return None
    ny, nx = row_any.shape[0], col_any.shape[0]
    ys = slice(max(0, rows[0] - r), min(ny, rows[-1] + r + 1))
    xs = slice(max(0, cols[0] - r), min(nx, cols[-1] + r + 1))
    return ys, xs


def dilate(ops: GridOps, mask: Any, r_mm: float, p: float) -> Any:
    """``mask`` (2-D) grown by ``r_mm`` (Euclidean), computed on its bounding box plus r."""
    out = array_module(mask).zeros_like(mask)
    win = _window(mask, r_mm, p)
    if win is None:
        return out
    ys, xs = win
    out[ys, xs] = ops.edt(~mask[ys, xs]).astype(np.float64) * p <= r_mm + 1e-9
    return out


def grow_into(
    ops: GridOps, seed: Any, target: Any, internal: tuple[Any, ...], p: float, margin_mm: float
) -> None:
    """``target`` takes the internal infill within ``margin_mm`` of ``seed`` (in place, per layer).

    PrusaSlicer (LayerRegion::process_external_surfaces) offsets top surfaces and bridges
    over air by EXTERNAL_INFILL_MARGIN and takes that area out of the layer's solid and
    sparse infill; only that layer changes. The distance transform runs on the seed's
    bounding box grown by the margin.
    """
    for i in np.flatnonzero(to_numpy(seed.any(axis=(1, 2)))):
        t = seed[i]
        ys, xs = _window(t, margin_mm, p)
        near = ops.edt(~t[ys, xs]).astype(np.float64) * p <= margin_mm + p / 2
        for m in internal:
            g = m[i, ys, xs] & near
            m[i, ys, xs] &= ~g
            target[i, ys, xs] |= g
