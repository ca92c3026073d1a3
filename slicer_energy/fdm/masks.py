"""Per-layer mask and distance primitives of the feature decomposition (NumPy or CuPy).

Masks are boolean arrays ``[layer, row, column]`` (or one layer, ``[row, column]``); nothing
here connects cells across layers. ``ndi`` is ``scipy.ndimage`` or ``cupyx.scipy.ndimage``
(:func:`._ndi.ndimage_for`), ``p`` the cell pitch in mm.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import array_module, to_numpy


def inplane_structure(xp: Any) -> Any:
    """Labelling structure for ``[layer, row, column]`` masks: components never span layers."""
    st = np.zeros((3, 3, 3), dtype=bool)
    st[1] = True  # 8-connected within a layer, never across layers
    return xp.asarray(st)


def layer_of_labels(xp: Any, labels: Any, n: int, k_of_cell: Any) -> Any:
    """Layer of each label ``0..n`` (labels never span layers; ``k_of_cell`` is one value per
    layer, broadcast over its cells). Scattered layer by layer: raveling a broadcast
    ``k_of_cell`` would copy a grid-sized integer array."""
    layer_of = xp.zeros(n + 1, dtype=xp.int64)
    for i in range(labels.shape[0]):
        layer_of[labels[i]] = k_of_cell[i, 0, 0]
    layer_of[0] = 0
    return layer_of


def per_layer_count(xp: Any, labels: Any, n: int, k_of_cell: Any, nz: int) -> Any:
    """Number of labelled components per layer (labels never span layers)."""
    if n == 0:
        return xp.zeros(nz, dtype=xp.int64)
    layer_of = layer_of_labels(xp, labels, n, k_of_cell)
    return xp.bincount(layer_of[1:], minlength=nz)[:nz]


def components(xp: Any, labels: Any, n: int, k0: int, p: float) -> list[tuple[int, Any]]:
    """Each labelled component's layer (``k0`` + its slab index) and its centroid and area,
    as ``(layer, array [[x_mm, y_mm, area_mm2], ...])`` for every layer that has any.

    ``labels`` is a padded ``[layer, row, column]`` slab (one cell of border), ``p`` the
    cell pitch; the centroid is in mm from the unpadded grid's corner.
    """
    if n == 0:
        return []
    kk, jj, ii = xp.nonzero(labels)
    lab = labels[kk, jj, ii]
    cnt = xp.bincount(lab, minlength=n + 1)[1:].astype(xp.float64)
    layer = xp.zeros(n + 1, dtype=xp.int64)
    layer[lab] = kk
    sx = xp.bincount(lab, weights=ii.astype(xp.float64), minlength=n + 1)[1:]
    sy = xp.bincount(lab, weights=jj.astype(xp.float64), minlength=n + 1)[1:]
    # cell (j, i) of the padded slab has its centre at ((i - 1 + 0.5) p, (j - 1 + 0.5) p)
    xy = np.stack(
        [
            to_numpy((sx / cnt - 0.5) * p),
            to_numpy((sy / cnt - 0.5) * p),
            to_numpy(cnt * p * p),
        ],
        axis=1,
    )
    lay = to_numpy(layer[1:])
    order = np.argsort(lay, kind="stable")
    lay, xy = lay[order], xy[order]
    cuts = np.flatnonzero(np.diff(lay)) + 1
    parts = zip(np.split(lay, cuts), np.split(xy, cuts), strict=True)
    return [(k0 + int(g[0]), c) for g, c in parts]


def edt_layers(ndi: Any, xp: Any, mask: Any, p: float) -> Any:
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
    for k in range(mask.shape[0]):
        # Prismatic parts repeat their section layer after layer: reuse the transform.
        if k and bool((mask[k] == mask[k - 1]).all()):
            out[k] = out[k - 1]
        elif crop:
            out[k] = 0.0
            win = _window(mask[k], 0.0, 1.0)
            if win is not None:
                out[k][win] = ndi.distance_transform_edt(mask[k][win])
        else:
            out[k] = ndi.distance_transform_edt(mask[k])
    out *= p
    out -= p / 2
    return out


def beyond(xp: Any, d: Any, t: Any, p: float) -> np.ndarray:
    """Per layer, the number of cells beyond distance ``t``, counting partial cells.

    A cell whose centre is at distance ``d`` covers ``d ± p/2``; the fraction of it beyond
    ``t`` is ``clip((d − t)/p + 1/2, 0, 1)``. This keeps band areas accurate to well under
    a cell width, so coarse grids still measure perimeters correctly.
    """
    return to_numpy(xp.clip((d - t) / p + 0.5, 0.0, 1.0).sum(axis=(1, 2)))


def _run_starts(mask: Any) -> Any:
    """Cells of ``mask`` (nz, ny, nx) that start a run along the rows (x).

    A one-cell gap does not start a new run: staircase edges of a voxelised outline
    would otherwise split one chord of the region into many.
    """
    xp = array_module(mask)
    P = xp.pad(mask, ((0, 0), (0, 0), (2, 0)))
    nx = mask.shape[2]
    cur, p1, p2 = P[:, :, 2 : nx + 2], P[:, :, 1 : nx + 1], P[:, :, 0:nx]
    return cur & ~p1 & ~p2


def runs(mask: Any) -> Any:
    """Run starts per layer of ``mask`` (nz, ny, nx) along the rows (x).

    Rows (not the 45° fill direction itself) are used because a staircase along a diagonal
    splits chords at every step; for compact regions the chord count differs little
    between directions.
    """
    return _run_starts(mask).sum(axis=(1, 2))


def fill_holes(ndi: Any, xp: Any, mask: Any, struct: Any, kcell: Any) -> tuple[Any, Any]:
    """``mask`` with its in-plane holes filled, and the number of holes per layer.

    A hole is background not connected to the border of its layer.
    """
    bg = ~mask
    lab, n = ndi.label(bg, structure=struct)
    n = int(n)
    border = xp.zeros(n + 1, dtype=bool)
    for edge in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        border[edge.ravel()] = True
    border[0] = True
    layer_of = layer_of_labels(xp, lab, n, kcell)
    holes = xp.bincount(layer_of[~border], minlength=int(kcell.max()) + 1 if kcell.size else 1)
    return mask | ~border[lab], holes


def _window(mask: Any, r_mm: float, p: float) -> tuple[slice, slice] | None:
    """Rows and columns of the bounding box of ``mask`` (2-D) grown by ``r_mm`` and one
    cell, clipped to the layer; None for an empty mask."""
    r = int(math.ceil(r_mm / p)) + 1
    rows = np.flatnonzero(to_numpy(mask.any(axis=1)))
    cols = np.flatnonzero(to_numpy(mask.any(axis=0)))
    if rows.size == 0:
        return None
    ny, nx = mask.shape
    ys = slice(max(0, rows[0] - r), min(ny, rows[-1] + r + 1))
    xs = slice(max(0, cols[0] - r), min(nx, cols[-1] + r + 1))
    return ys, xs


def dilate(ndi: Any, mask: Any, r_mm: float, p: float) -> Any:
    """``mask`` (2-D) grown by ``r_mm`` (Euclidean), computed on its bounding box plus r."""
    out = array_module(mask).zeros_like(mask)
    win = _window(mask, r_mm, p)
    if win is None:
        return out
    ys, xs = win
    out[ys, xs] = ndi.distance_transform_edt(~mask[ys, xs]) * p <= r_mm + 1e-9
    return out


def grow_into(
    ndi: Any, seed: Any, target: Any, internal: tuple[Any, ...], p: float, margin_mm: float
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
        near = ndi.distance_transform_edt(~t[ys, xs]) * p <= margin_mm + p / 2
        for m in internal:
            g = m[i, ys, xs] & near
            m[i, ys, xs] &= ~g
            target[i, ys, xs] |= g
