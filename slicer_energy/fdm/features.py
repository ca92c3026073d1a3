"""Per-layer feature decomposition of a voxelised part: what a slicer would extrude where.

Works on a :class:`~slicer_energy.voxelize.LayerGrid` whose z pitch is the layer height,
with one code path for NumPy and CuPy (``scipy.ndimage`` / ``cupyx.scipy.ndimage``).
For every layer it finds the regions PrusaSlicer fills and how:

* **perimeters** from an in-plane Euclidean distance transform ``d`` (distance of each
  cell centre to the layer's contour): the external loop is the band ``0 < d ≤ t1``,
  the inner loops the bands up to ``t_shell``; a band's area divided by its width is the
  loop's centre-line length (so curvature, holes and thin walls need no special case).
  Each external band is labelled; loops shorter than 2π·6.5 mm print at the
  small-perimeter speed, as PrusaSlicer does.
* **solid infill** where the interior (``d > t_shell``) is not interior in all of the
  ``top`` layers above or ``bottom`` layers below (top and bottom skins and the extra
  solid of ``ensure_vertical_shell_thickness``), unless the band that makes it solid is
  narrower than 1.05 line spacings (PrusaSlicer's opening), plus the cells within 3 mm of
  a neighbouring layer's top or bottom surface; of it, **top solid** where the layer above
  is air and **bridge** where the layer below is air (or a top skin lies on sparse infill);
  top surfaces and bridges over air take the layer's infill within 3 mm of them.
* **sparse infill**: the rest of the interior.
* **supports**: overhangs steeper than the threshold (cells farther than
  ``h / tan(threshold)`` from the layer below, and the mesh's own downward faces) grown by
  2 mm and projected down until they meet the part or the plate, kept ``xy_spacing`` from
  the part; the top ``interface_layers`` are dense; the first layer is widened and dense.
* **islands**, holes and solid lines cut by holes per layer (each costs travels and
  retractions), and the **skirt** (convex hull of the first layer, enough loops for
  ``min_skirt_length`` of filament).

Path length of a region = area / line spacing (× density for sparse infill and supports);
extruded volume = length × spacing × layer height (PrusaSlicer's bead cross-section).
Sparse infill adds the anchors that join line ends along the region's outline. Line
pieces per region (for acceleration penalties) come from the region's chords along the
grid rows and columns. Given the mesh, loops are capped by its section length per layer.
The few free constants below were fitted to PrusaSlicer 2.5 (README, 'FDM
prediction', names the training parts; accuracy is reported on the others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import array_module, to_numpy
from ..voxelize import LayerGrid
from ._ndi import ndimage_for
from .settings import PrintSettings

SMALL_PERIMETER_MM = 2.0 * math.pi * 6.5  # PrusaSlicer SMALL_PERIMETER_LENGTH
FEATURES = (
    "external_perimeter",
    "perimeter",
    "solid_infill",
    "top_solid_infill",
    "bridge_infill",
    "internal_infill",
    "support_material",
    "support_material_interface",
    "skirt_brim",
)
# Fitted to PrusaSlicer 2.5's G-code of the training parts (reference_parts.TRAINING): the
# gyroid's path per area is 0.967 of area·density/spacing, and its anchors add 0.374 of the
# sparse region's outline estimate.
GYROID_AREA_FACTOR = 0.967
ANCHOR_BOUNDARY_FACTOR = 0.374
# PrusaSlicer 2.5 (grid style, closing radius 2 mm) grows the support contact areas beyond
# the projected overhang; modelled as a dilation of every layer's contact area by this
# distance, fitted on the headphone stand with supports (held out: the iPhone 6 case).
SUPPORT_CONTACT_GROWTH_MM = 2.0
# Fill lines (with a turn each) per row chord of a region, as fitted together with the
# travel and gyroid constants of time.py (the same training parts).
CHORD_FACTOR = 1.0 / math.sqrt(2.0)
# PrusaSlicer 2.5 (discover_vertical_shells) opens the extra solid of
# ensure_vertical_shell_thickness by half of 1.05 solid-infill spacings: bands narrower than
# that (steep slopes, and the voxel staircase of vertical walls) stay sparse.
SHELL_OPENING_SPACINGS = 1.05
# LayerRegion::process_external_surfaces grows top surfaces by EXTERNAL_INFILL_MARGIN (3 mm)
# into the layer's internal infill (libslic3r.h), for anchoring.
EXTERNAL_INFILL_MARGIN_MM = 3.0
# Solid chords shorter than this (thin strokes, lettering) are not counted as cut by holes.
BREAK_MIN_CHORD_MM = 1.0
# Bytes of working memory per slab cell (EDT float64, labels, masks).
_BYTES_PER_CELL = 40


@dataclass
class LayerFeatures:
    """Per-layer path lengths and volumes by feature (NumPy arrays of length ``nz``)."""

    layer_height_mm: float
    z_top_mm: np.ndarray
    area_mm2: dict[str, np.ndarray]
    length_mm: dict[str, np.ndarray]
    volume_mm3: dict[str, np.ndarray]
    pieces: dict[str, np.ndarray]  # line pieces (infill lines, loops) per layer and feature
    small_perimeter_fraction: np.ndarray
    islands: np.ndarray
    loops: np.ndarray
    fill_breaks: np.ndarray  # solid infill lines interrupted by holes per layer
    fill_holes: np.ndarray  # holes in the solid infill regions per layer
    support_islands: np.ndarray  # separate support areas per layer
    extent_mm: tuple[float, float, float]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def nz(self) -> int:
        return int(self.z_top_mm.shape[0])

    def total_length_mm(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.length_mm.items()}

    def total_volume_mm3(self) -> float:
        return float(sum(v.sum() for v in self.volume_mm3.values()))


def _inplane_structure(xp: Any) -> Any:
    st = np.zeros((3, 3, 3), dtype=bool)
    st[1] = True  # 8-connected within a layer, never across layers
    return xp.asarray(st)


def _per_layer_count(xp: Any, labels: Any, n: int, k_of_cell: Any, nz: int) -> Any:
    """Number of labelled components per layer (labels never span layers)."""
    if n == 0:
        return xp.zeros(nz, dtype=xp.int64)
    layer_of = xp.zeros(n + 1, dtype=xp.int64)
    layer_of[labels.ravel()] = k_of_cell.ravel()
    return xp.bincount(layer_of[1:], minlength=nz)[:nz]


def _edt_layers(ndi: Any, xp: Any, mask: Any, p: float) -> Any:
    """In-plane distance (mm) from each cell centre to the layer's contour, layer by layer.

    The EDT gives the distance to the nearest empty cell centre; the contour lies about
    half a cell before it. Per-layer 2-D transforms are ~3x faster than one 3-D transform
    with an infinite z sampling, and never mix layers; a layer equal to the one below
    reuses its transform.
    """
    out = xp.empty(mask.shape, dtype=xp.float32)
    for k in range(mask.shape[0]):
        # Prismatic parts repeat their section layer after layer: reuse the transform.
        if k and bool((mask[k] == mask[k - 1]).all()):
            out[k] = out[k - 1]
        else:
            out[k] = ndi.distance_transform_edt(mask[k])
    out *= p
    out -= p / 2
    return out


def _beyond(xp: Any, d: Any, t: Any, p: float) -> np.ndarray:
    """Per layer, the number of cells beyond distance ``t``, counting partial cells.

    A cell whose centre is at distance ``d`` covers ``d ± p/2``; the fraction of it beyond
    ``t`` is ``clip((d − t)/p + 1/2, 0, 1)``. This keeps band areas accurate to well under
    a cell width, so coarse grids still measure perimeters correctly.
    """
    return to_numpy(xp.clip((d - t) / p + 0.5, 0.0, 1.0).sum(axis=(1, 2)))


def _runs(mask: Any) -> Any:
    """Run starts per layer of ``mask`` (nz, ny, nx) along the rows (x).

    A one-cell gap does not start a new run: staircase edges of a voxelised outline
    would otherwise split one chord of the region into many. Rows (not the 45° fill
    direction itself) are used because a staircase along a diagonal splits chords at
    every step; for compact regions the chord count differs little between directions.
    """
    xp = array_module(mask)
    P = xp.pad(mask, ((0, 0), (0, 0), (2, 0)))
    nx = mask.shape[2]
    cur, p1, p2 = P[:, :, 2 : nx + 2], P[:, :, 1 : nx + 1], P[:, :, 0:nx]
    return (cur & ~p1 & ~p2).sum(axis=(1, 2))


def _long_runs(mask: Any, m: int) -> Any:
    """Like :func:`_runs`, counting only runs at least ``m`` cells long."""
    if m <= 1:
        return _runs(mask)
    xp = array_module(mask)
    nx = mask.shape[2]
    if m > nx:  # no run that long fits the layer (a wall narrower than m cells)
        return xp.zeros(mask.shape[0], dtype=xp.int64)
    P = xp.pad(mask, ((0, 0), (0, 0), (2, 0)))
    cur, p1, p2 = P[:, :, 2 : nx + 2], P[:, :, 1 : nx + 1], P[:, :, 0:nx]
    full = mask.copy()  # the next m cells (this one included) are all in the mask
    for i in range(1, m):
        full[:, :, : nx - i] &= mask[:, :, i:]
        full[:, :, nx - i :] = False
    return (cur & ~p1 & ~p2 & full).sum(axis=(1, 2))


def _fill_holes(ndi: Any, xp: Any, mask: Any, struct: Any, kcell: Any) -> tuple[Any, Any]:
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
    layer_of = xp.zeros(n + 1, dtype=xp.int64)
    layer_of[lab.ravel()] = kcell.ravel()
    holes = xp.bincount(layer_of[~border], minlength=int(kcell.max()) + 1 if kcell.size else 1)
    return mask | ~border[lab], holes


def _grown_surface_shells(
    ndi: Any,
    xp: Any,
    S: Any,
    interior: Any,
    a0: int,
    a1: int,
    nz: int,
    j0: int,
    k1: int,
    nt: int,
    nb: int,
    p: float,
    r_mm: float,
) -> Any:
    """Cells of layers ``j0..k1-1`` within ``r_mm`` of a top surface of one of the
    ``nt - 1`` layers above, or of a bottom surface over air of the ``nb - 1`` below.

    ``S``/``interior`` hold slab layers ``a0..a1-1``. Surfaces are the layer's interior
    with air directly above (top) or below (bottom, not on the plate).
    """
    n = a1 - a0
    above = xp.zeros_like(S)
    above[:-1] = S[1:]
    top = interior & ~above
    if a1 < nz:  # the slab's last layer: the layer above is outside the slab
        top[-1] = False
    bottom = xp.zeros_like(S)
    bottom[1:] = interior[1:] & ~S[:-1]
    grown: dict[tuple[str, int], Any] = {}

    def g(kind: str, j: int) -> Any:
        key = (kind, j)
        if key not in grown:
            m = (top if kind == "t" else bottom)[j]
            grown[key] = _dilate(ndi, m, r_mm, p) if bool(m.any()) else None
        return grown[key]

    out = xp.zeros((k1 - j0,) + S.shape[1:], dtype=bool)
    for k in range(j0, k1):
        i = k - a0
        acc = out[k - j0]
        for j in range(i + 1, min(n, i + nt)):
            m = g("t", j)
            if m is not None:
                acc |= m
        for j in range(max(1 if a0 == 0 else 0, i - nb + 1), i):
            m = g("b", j)
            if m is not None:
                acc |= m
    return out


def _grow_into(
    ndi: Any, seed: Any, target: Any, internal: tuple[Any, ...], p: float, margin_mm: float
) -> None:
    """``target`` takes the internal infill within ``margin_mm`` of ``seed`` (in place, per layer).

    PrusaSlicer (LayerRegion::process_external_surfaces) offsets top surfaces and bridges
    over air by EXTERNAL_INFILL_MARGIN and takes that area out of the layer's solid and
    sparse infill; only that layer changes. The distance transform runs on the seed's
    bounding box grown by the margin.
    """
    r = int(math.ceil(margin_mm / p)) + 1
    has = to_numpy(seed.any(axis=(1, 2)))
    ny, nx = seed.shape[1:]
    for i in np.flatnonzero(has):
        t = seed[i]
        rows = to_numpy(t.any(axis=1))
        cols = to_numpy(t.any(axis=0))
        r0, r1 = np.flatnonzero(rows)[[0, -1]]
        c0, c1 = np.flatnonzero(cols)[[0, -1]]
        ys = slice(max(0, r0 - r), min(ny, r1 + r + 1))
        xs = slice(max(0, c0 - r), min(nx, c1 + r + 1))
        near = ndi.distance_transform_edt(~t[ys, xs]) * p <= margin_mm + p / 2
        for m in internal:
            g = m[i, ys, xs] & near
            m[i, ys, xs] &= ~g
            target[i, ys, xs] |= g


def decompose(  # noqa: C901, PLR0912, PLR0915 - all features of a layer in one pass; split planned (issue 15 item 4)
    grid: LayerGrid,
    s: PrintSettings,
    filament_diameter_mm: float = 1.75,
    memory_budget_mb: float = 512.0,
    mesh: Any = None,
) -> LayerFeatures:
    """Feature regions of every layer of ``grid`` under print settings ``s``.

    Parameters
    ----------
    grid : LayerGrid with ``pitch_z`` equal to the layer height and ``origin[2] = 0``.
    s : print settings (widths, shells, infill, supports).
    memory_budget_mb : working memory for one z slab (EDT, labels).
    mesh : the part's mesh (trimesh); when given, its faces steeper than the support
        threshold also mark support contacts (slopes that grow less than a cell per layer).

    Returns
    -------
    LayerFeatures with per-layer arrays on the host.
    """
    xp = grid.xp
    ndi = ndimage_for(xp)
    occ = grid.occupancy
    nz, ny, nx = grid.shape
    p = grid.pitch_xy
    h = grid.pitch_z
    if abs(h - s.layer_height_mm) > 1e-6:
        raise ValueError(f"grid z pitch {h} mm differs from the layer height {s.layer_height_mm}")
    nt, nb = s.top_layers_eff, s.bottom_layers_eff
    halo = max(nt, nb) + 1

    # Band limits (distance from the contour, mm), per layer kind (first layer is thinner-wide).
    def shell_limits(first: bool) -> tuple[float, float, float, float]:
        we = s.w_first_layer_mm if first else s.w_external_perimeter_mm
        wp = s.w_first_layer_mm if first else s.w_perimeter_mm
        hh = s.first_layer_height_mm if first else h
        se, sp = s.spacing_mm(we, hh), s.spacing_mm(wp, hh)
        if s.perimeters == 0:
            return 0.0, 0.0, se, sp
        t1 = we / 2 + (0.5 * (se + sp) / 2 if s.perimeters > 1 else se / 2)
        tshell = we / 2 + (0.5 * (se + sp) if s.perimeters > 1 else 0.0)
        tshell += max(0, s.perimeters - 2) * sp + (sp / 2 if s.perimeters > 1 else se / 2)
        return t1, tshell, se, sp

    lim_first, lim = shell_limits(True), shell_limits(False)
    w_open = SHELL_OPENING_SPACINGS * s.spacing_mm(s.w_solid_infill_mm, h)
    area = {k: np.zeros(nz) for k in FEATURES}
    pieces = {k: np.zeros(nz) for k in FEATURES}
    small_frac = np.zeros(nz)
    boundary = np.zeros(nz)  # outline length of the sparse infill region
    breaks = np.zeros(nz)  # solid chords cut by holes (before dividing by the line spacing)
    holes_n = np.zeros(nz)  # holes in the solid regions
    sup_islands = np.zeros(nz)  # separate support areas
    islands = np.zeros(nz)
    loops = np.zeros(nz)
    struct = _inplane_structure(xp)
    cell_a = p * p

    slab = int(max(1, (memory_budget_mb * 2**20) // (_BYTES_PER_CELL * (ny + 2) * (nx + 2))))
    slab = max(1, min(nz, slab - 2 * halo if slab > 4 * halo else slab))
    n_slabs = math.ceil(nz / slab)
    d_out_cache: dict[int, Any] = {}  # distance outside the part, for supports (host bool masks)
    for si in range(n_slabs):
        k0, k1 = si * slab, min(nz, (si + 1) * slab)
        a0, a1 = max(0, k0 - halo), min(nz, k1 + halo)
        S = xp.pad(occ[a0:a1], ((0, 0), (1, 1), (1, 1)))
        d = _edt_layers(ndi, xp, S, p)
        d[~S] = -p / 2
        kk = xp.arange(a0, a1)
        tshell = xp.where(kk == 0, lim_first[1], lim[1]).astype(xp.float32)[:, None, None]
        interior = d > tshell
        # Vertical shells (ensure_vertical_shell_thickness): a cell is solid where the
        # interior is not interior in one of the nt layers above or nb below (layers
        # outside the grid are air above, plate below). The band that makes it solid is
        # d_here - d_there wide; PrusaSlicer's opening drops bands narrower than w_open.
        dd = d - tshell
        j0 = max(0, k0 - 1)  # one layer below the slab: is its interior sparse?
        off = nb if a0 == 0 else 0
        parts = [dd]
        if off:
            parts.insert(0, xp.full((nb,) + dd.shape[1:], -xp.inf, dtype=dd.dtype))
        if a1 == nz:
            parts.append(xp.full((nt + 1,) + dd.shape[1:], -xp.inf, dtype=dd.dtype))
        P = xp.concatenate(parts) if len(parts) > 1 else dd
        L0, L1 = j0 - a0 + off, k1 - a0 + off
        mn = None
        for i in [*range(1, nt + 1), *range(-nb, 0)]:
            w = P[L0 + i : L1 + i]
            mn = w if mn is None else xp.minimum(mn, w)
        here = P[L0:L1]
        if mn is None:
            mn = xp.full(here.shape, xp.inf)
        shell = (mn <= 0) & ((here - mn) >= w_open)
        del P, parts
        # PrusaSlicer's shell window also takes the top and bottom surfaces of the
        # neighbouring layers after they were grown by the 3 mm margin (plus one
        # min_perimeter_infill_spacing): solid under a top reaches that far beyond it.
        shell |= _grown_surface_shells(
            ndi, xp, S, interior, a0, a1, nz, j0, k1, nt, nb, p, EXTERNAL_INFILL_MARGIN_MM + w_open
        )
        core_all = interior[j0 - a0 : k1 - a0]
        solid_all = core_all & shell
        sparse_all = core_all & ~solid_all
        o = k0 - j0
        core, solid, sparse = core_all[o:], solid_all[o:], sparse_all[o:]
        sl = slice(k0 - a0, k1 - a0)
        Sc = S[sl]
        above = S[sl.start + 1 : sl.stop + 1]
        if above.shape[0] < Sc.shape[0]:  # top of the part: air above
            above = xp.concatenate([above, xp.zeros((1,) + Sc.shape[1:], dtype=bool)])
        if k0 > 0:
            below_air = ~S[sl.start - 1 : sl.stop - 1]
            below_sparse = sparse_all[:-1]
        else:
            below_air = xp.concatenate([xp.zeros((1,) + Sc.shape[1:], dtype=bool), ~Sc[:-1]])
            below_sparse = xp.concatenate(
                [xp.zeros((1,) + Sc.shape[1:], dtype=bool), sparse_all[:-1]]
            )
        top = solid & ~above
        # Solid over air, or a top skin's lowest layer over sparse infill, is laid as a
        # bridge (PrusaSlicer's bridge infill); vertical-shell solid over sparse is not.
        sc = xp.concatenate(
            [xp.zeros((1,) + S.shape[1:], dtype=xp.int16), xp.cumsum(S, 0, dtype=xp.int16)]
        )
        lk = xp.arange(k0 - a0, k1 - a0)
        s_up = sc[xp.minimum(lk + 1 + nt, a1 - a0)] - sc[lk + 1]
        air_above = (s_up < nt) | ((lk + a0 + nt) >= nz)[:, None, None]
        bridge = solid & (below_air | (below_sparse & air_above)) & ~top
        solid_int = solid & ~top & ~bridge
        sparse = sparse.copy()
        # Bridges over air and top surfaces take the internal infill within the margin.
        m_ext = EXTERNAL_INFILL_MARGIN_MM
        _grow_into(ndi, bridge & below_air, bridge, (solid_int, sparse), p, m_ext)
        _grow_into(ndi, top, top, (solid_int, sparse), p, m_ext)
        dc = d[sl]
        k_here = xp.arange(k0, k1)
        t1 = xp.where(k_here == 0, lim_first[0], lim[0]).astype(xp.float32)[:, None, None]
        ts = tshell[sl]
        ext = Sc & (dc <= t1)
        kcell = xp.broadcast_to(k_here[:, None, None], Sc.shape)
        # Islands and contour loops (external bands), per layer.
        lab, n_isl = ndi.label(Sc, structure=struct)
        islands[k0:k1] = to_numpy(_per_layer_count(xp, lab, int(n_isl), kcell, nz)[k0:k1])
        rlab, n_ring = ndi.label(ext, structure=struct)
        n_ring = int(n_ring)
        if n_ring:
            ring_cells = xp.bincount(rlab.ravel(), minlength=n_ring + 1)[1:]
            layer_of = xp.zeros(n_ring + 1, dtype=xp.int64)
            layer_of[rlab.ravel()] = kcell.ravel()
            lay = layer_of[1:]
            t1_ring = xp.where(lay == 0, lim_first[0], lim[0])
            ring_len = ring_cells * cell_a / t1_ring
            small = ring_len < SMALL_PERIMETER_MM
            tot = xp.bincount(lay, weights=ring_cells.astype(xp.float64), minlength=nz)[:nz]
            sm = xp.bincount(lay, weights=(ring_cells * small).astype(xp.float64), minlength=nz)
            small_frac[k0:k1] = to_numpy(sm[:nz][k0:k1] / xp.maximum(tot[k0:k1], 1))
            loops[k0:k1] = to_numpy(xp.bincount(lay, minlength=nz)[:nz][k0:k1])
        del lab, rlab

        # Band areas with sub-cell accuracy: each cell counts the fraction of it beyond t.
        a_all, a_t1, a_ts = (_beyond(xp, dc, t, p) * cell_a for t in (0.0, t1, ts))
        area["external_perimeter"][k0:k1] = a_all - a_t1
        area["perimeter"][k0:k1] = a_t1 - a_ts
        n_core = to_numpy(core.sum(axis=(1, 2))).astype(float)
        scale = np.where(n_core > 0, a_ts / np.maximum(n_core * cell_a, 1e-12), 0.0)
        regions = {
            "solid_infill": solid_int,
            "top_solid_infill": top,
            "bridge_infill": bridge,
            "internal_infill": sparse,
        }
        # Fill lines cut by holes: each costs a travel.
        filled = solid_int | top | bridge
        no_holes, n_holes = _fill_holes(ndi, xp, filled, struct, kcell - k0)
        holes_n[k0:k1] = to_numpy(n_holes)[: k1 - k0]
        # Only chords long enough to be chained into a zig-zag count: in strokes narrower
        # than BREAK_MIN_CHORD_MM every fill line is its own piece already.
        m_run = max(1, round(BREAK_MIN_CHORD_MM / p))
        cut = xp.maximum(_long_runs(filled, m_run) - _long_runs(no_holes, m_run), 0)
        breaks[k0:k1] = to_numpy(cut).astype(float) * p * CHORD_FACTOR
        del no_holes, filled
        for name, m in regions.items():
            area[name][k0:k1] = to_numpy(m.sum(axis=(1, 2))) * cell_a * scale
            # Chords of the region (one fill line each, before thinning by the spacing).
            rx = to_numpy(_runs(m)).astype(float)
            ry = to_numpy(_runs(m.transpose(0, 2, 1))).astype(float)
            # Fill lines alternate between +45° and -45°: over both, a thin band of length
            # L along x or y is crossed by L/(√2·spacing) lines, which the larger of the row
            # and column chord counts gives; for compact regions both are alike.
            pieces[name][k0:k1] = np.maximum(rx, ry) * p * CHORD_FACTOR
            if name == "internal_infill":
                # Outline length from crossings of rows and columns (Cauchy-Crofton style;
                # its constant factor is absorbed by the fitted ANCHOR_BOUNDARY_FACTOR).
                cross = 2 * p * (rx + ry + math.sqrt(2.0) * rx)
                boundary[k0:k1] = (math.pi / 2) * cross / 4
        if s.supports:
            nS = ~Sc
            dout = _edt_layers(ndi, xp, nS, p).astype(xp.float32)
            for i, k in enumerate(range(k0, k1)):
                d_out_cache[k] = dout[i]
            del nS, dout
        del S, d, dd, interior, shell, mn, here, core_all, solid_all, sparse_all
    # Lengths and line pieces from areas (per layer kind).
    first = np.zeros(nz, dtype=bool)
    first[0] = True
    h_l = np.where(first, s.first_layer_height_mm, h)

    def sp(width: float) -> np.ndarray:
        return np.where(
            first, s.spacing_mm(s.w_first_layer_mm, s.first_layer_height_mm), s.spacing_mm(width, h)
        )

    t1_l = np.where(first, lim_first[0], lim[0])
    band_inner = np.where(first, lim_first[1] - lim_first[0], lim[1] - lim[0])
    n_inner = max(0, s.perimeters - 1)
    length = {k: np.zeros(nz) for k in FEATURES}
    vol = {k: np.zeros(nz) for k in FEATURES}
    length["external_perimeter"] = area["external_perimeter"] / np.maximum(t1_l, 1e-9)
    if n_inner:
        length["perimeter"] = area["perimeter"] / np.maximum(band_inner, 1e-9) * n_inner
    if mesh is not None:
        # The voxel outline is a staircase: on edges at odd angles its bands overstate the
        # loop length at coarse cells. A loop is never longer than the mesh's own section
        # (plus the growth of the loops around holes, which are offset outwards).
        l_mesh = contour_length_per_layer(mesh, grid.layer_z_mm())
        holes = np.maximum(loops - islands, 0)
        w_ext = np.where(first, s.w_first_layer_mm, s.w_external_perimeter_mm)
        cap_ext = l_mesh + 2 * math.pi * (w_ext / 2) * holes
        cap_per = n_inner * (l_mesh + 2 * math.pi * (t1_l + band_inner / 2) * holes)
        length["external_perimeter"] = np.minimum(length["external_perimeter"], cap_ext)
        length["perimeter"] = np.minimum(length["perimeter"], cap_per)
    for name, w in (
        ("external_perimeter", s.w_external_perimeter_mm),
        ("perimeter", s.w_perimeter_mm),
    ):
        vol[name] = length[name] * sp(w) * h_l
    for name, w, dens in (
        ("solid_infill", s.w_solid_infill_mm, 1.0),
        ("top_solid_infill", s.w_top_infill_mm, 1.0),
        ("bridge_infill", s.w_solid_infill_mm, 1.0),
        ("internal_infill", s.w_infill_mm, s.infill_density),
    ):
        spacing = sp(w)
        length[name] = area[name] * dens / spacing
        # Chords of the region across the fill direction, thinned by the line spacing.
        pieces[name] = pieces[name] * dens / spacing
    breaks = breaks / sp(s.w_solid_infill_mm)
    if s.infill_density > 0:
        # Sparse infill: the pattern's own lines plus the anchors that join line ends along
        # the region's outline (PrusaSlicer 2.5 infill_anchor, up to 12 mm each).
        f_area = GYROID_AREA_FACTOR if s.infill_pattern == "gyroid" else 1.0
        length["internal_infill"] = (
            f_area * length["internal_infill"] + ANCHOR_BOUNDARY_FACTOR * boundary
        )
    for name, w in (
        ("solid_infill", s.w_solid_infill_mm),
        ("top_solid_infill", s.w_top_infill_mm),
        ("bridge_infill", s.w_solid_infill_mm),
        ("internal_infill", s.w_infill_mm),
    ):
        vol[name] = length[name] * sp(w) * h_l
    vol["bridge_infill"] *= s.bridge_flow_ratio
    if s.supports:
        extra = overhang_cells(mesh, grid, s.support_threshold_deg) if mesh is not None else None
        _supports(grid, s, d_out_cache, area, length, vol, pieces, h_l, extra, sup_islands)
    pieces["external_perimeter"] = loops.copy()
    pieces["perimeter"] = loops * n_inner
    # Skirt: loops around the convex hull of the first layer(s), offset by the distance.
    sk = _skirt_length_mm(grid, s, filament_diameter_mm)
    for k in range(min(nz, s.skirt_height_layers)):
        length["skirt_brim"][k] = sk
        vol["skirt_brim"][k] = sk * sp(s.w_first_layer_mm)[k] * h_l[k]
        pieces["skirt_brim"][k] = s.skirt_loops
    ext = grid.shape
    return LayerFeatures(
        layer_height_mm=h,
        z_top_mm=grid.layer_top_mm(),
        area_mm2=area,
        length_mm=length,
        volume_mm3=vol,
        pieces=pieces,
        small_perimeter_fraction=small_frac,
        islands=islands,
        loops=loops,
        fill_breaks=breaks,
        fill_holes=holes_n,
        support_islands=sup_islands,
        extent_mm=(ext[2] * p, ext[1] * p, ext[0] * h),
        info={"slab_layers": slab, "slabs": n_slabs},
    )


def _skirt_length_mm(grid: LayerGrid, s: PrintSettings, filament_diameter_mm: float) -> float:
    """Length of the skirt loops: convex hull of the first layer, offset outwards."""
    if s.skirt_loops == 0 or s.skirt_height_layers == 0:
        return 0.0
    m = to_numpy(grid.occupancy[0])
    # Only outline cells can be hull vertices.
    inner = np.zeros_like(m)
    inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    if m.sum() >= 3:
        m = m & ~inner
    jj, ii = np.nonzero(m)
    if jj.size < 3:
        return 0.0
    from scipy.spatial import ConvexHull

    p = grid.pitch_xy
    pts = np.concatenate(
        [np.stack([ii + dx, jj + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]
    ).astype(float)
    try:
        hull = ConvexHull(pts * p)
        perim = float(hull.area)  # in 2-D, "area" is the perimeter
    except Exception:  # degenerate (a line): fall back to the bounding box
        perim = 2 * p * (np.ptp(ii) + np.ptp(jj) + 2)
    sp = s.spacing_mm(s.w_first_layer_mm, s.first_layer_height_mm)
    # min_skirt_length is filament (mm of 1.75 mm strand) on the first layer: add loops.
    need_mm3 = s.skirt_min_length_mm * math.pi * filament_diameter_mm**2 / 4
    total, i = 0.0, 0
    while i < s.skirt_loops or total * sp * s.first_layer_height_mm < need_mm3:
        r = s.skirt_distance_mm + s.w_first_layer_mm / 2 + i * sp
        total += perim + 2 * math.pi * r
        i += 1
        if i > 1000:
            break
    return total


def _supports(  # noqa: PLR0915 - support areas, interfaces and islands in one pass
    grid: LayerGrid,
    s: PrintSettings,
    d_out: dict[int, Any],
    area: dict[str, np.ndarray],
    length: dict[str, np.ndarray],
    vol: dict[str, np.ndarray],
    pieces: dict[str, np.ndarray],
    h_l: np.ndarray,
    extra_contacts: dict[int, np.ndarray] | None = None,
    support_islands: np.ndarray | None = None,
) -> None:
    """Support columns under overhangs, swept from the top layer down (in place)."""
    xp = grid.xp
    nz, ny, nx = grid.shape
    h, p = grid.pitch_z, grid.pitch_xy
    r_thr = h / math.tan(math.radians(max(s.support_threshold_deg, 1e-3)))
    gap = max(0, round(s.support_contact_distance_mm / h))
    xy_gap = s.support_xy_spacing_fraction * s.w_external_perimeter_mm
    n_if = s.support_interface_layers
    col = xp.zeros((ny + 2, nx + 2), dtype=bool)
    recent: list[Any] = []  # contact masks of the last n_if layers (for interfaces)
    contact_at: dict[int, Any] = {}
    grow = SUPPORT_CONTACT_GROWTH_MM
    for k in range(1, nz):
        # Cells of layer k farther than r_thr from the solid of layer k-1 overhang.
        c = (d_out[k - 1] > r_thr) & (d_out[k] <= -p / 2 + 1e-9)  # solid at k, far at k-1
        if extra_contacts is not None and k in extra_contacts:
            jj, ii = extra_contacts[k]
            c[xp.asarray(jj), xp.asarray(ii)] = True
        if grow > 0 and bool(c.any()):
            c = _dilate(ndimage_for(xp), c, grow, p)
        contact_at[k] = c
    a_base = np.zeros(nz)
    a_if = np.zeros(nz)
    runs_base = np.zeros(nz)
    n_isl = support_islands
    ndi = ndimage_for(xp)
    for k in range(nz - 1, -1, -1):
        src = k + 1 + gap
        if src in contact_at:
            col = col | contact_at[src]
            recent.insert(0, contact_at[src])
        else:
            recent.insert(0, None)
        recent = recent[: max(1, n_if)]
        solid_k = d_out[k] <= -p / 2 + 1e-9
        col = col & ~solid_k
        region = col & (d_out[k] > xy_gap)
        iface = xp.zeros_like(region)
        if n_if and k > 0:
            for r in recent[:n_if]:
                if r is not None:
                    iface |= r
            iface &= region
        if k == 0 and s.support_first_layer_expansion_mm > 0 and bool(region.any()):
            # The first support layer is widened for adhesion (raft_first_layer_expansion),
            # still kept xy_gap from the part.
            region = _dilate(ndimage_for(xp), region, s.support_first_layer_expansion_mm, p)
            region &= d_out[0] > xy_gap
        a_if[k] = float(iface.sum()) * p * p
        if bool(region.any()):
            # Each separate support area is reached by a travel.
            n_isl[k] = int(ndi.label(region, structure=xp.ones((3, 3), dtype=bool))[1])
        base = region & ~iface
        a_base[k] = float(base.sum()) * p * p
        runs_base[k] = float(_runs(base[None])[0]) * p
    sp = s.spacing_mm(s.w_support_mm, h)
    dens_base = np.full(nz, sp / (s.support_spacing_mm + sp))
    dens_base[0] = s.support_first_layer_density  # raft_first_layer_density
    dens_if = min(1.0, sp / (s.support_interface_spacing_mm + sp))
    area["support_material"] = a_base
    area["support_material_interface"] = a_if
    length["support_material"] = a_base * dens_base / sp
    length["support_material_interface"] = a_if * dens_if / sp
    vol["support_material"] = length["support_material"] * sp * h_l
    vol["support_material_interface"] = length["support_material_interface"] * sp * h_l
    pieces["support_material"] = runs_base * dens_base / sp
    pieces["support_material_interface"] = length["support_material_interface"] / 5.0


def overhang_cells(
    mesh: Any, grid: LayerGrid, threshold_deg: float
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Cells (per layer, padded (j, i) indices) under the part's overhanging faces.

    A downward face flatter than ``threshold_deg`` from horizontal needs support
    (PrusaSlicer's support_material_threshold); its area is sampled every half cell and
    each sample marks the cell of the layer it lies in. Slopes whose outline moves less
    than a cell per layer are invisible to the layer-to-layer comparison, not to this.
    """
    if hasattr(mesh, "mesh"):
        mesh = mesh.mesh
    n = np.asarray(mesh.face_normals)
    down = n[:, 2] < -math.cos(math.radians(max(threshold_deg, 1e-3)))
    if not down.any():
        return {}
    tri = np.asarray(mesh.triangles)[down]
    area = np.asarray(mesh.area_faces)[down]
    p, h = grid.pitch_xy, grid.pitch_z
    x0, y0, z0 = grid.origin
    step = p / 2
    pts = []
    # Barycentric lattice per triangle, dense enough for one sample per step².
    m_all = np.ceil(np.sqrt(2 * area) / step).astype(int) + 1
    for m in np.unique(m_all):
        sel = tri[m_all == m]
        a, b = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
        keep = a + b <= m
        u, v = a[keep] / m, b[keep] / m
        w = 1 - u - v
        pts.append(
            (u[None, :, None] * sel[:, None, 0] + v[None, :, None] * sel[:, None, 1])
            + w[None, :, None] * sel[:, None, 2]
        )
    q = np.concatenate([x.reshape(-1, 3) for x in pts])
    k = np.floor((q[:, 2] - z0) / h).astype(int) + 1  # the layer the part starts above
    i = np.floor((q[:, 0] - x0) / p).astype(int) + 1
    j = np.floor((q[:, 1] - y0) / p).astype(int) + 1
    nz, ny, nx = grid.shape
    ok = (k >= 1) & (k < nz) & (i >= 0) & (i < nx + 2) & (j >= 0) & (j < ny + 2)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    k, j, i = k[ok], j[ok], i[ok]
    order = np.argsort(k, kind="stable")
    k, j, i = k[order], j[order], i[order]
    bounds = np.searchsorted(k, np.arange(nz + 1))
    for kk in range(1, nz):
        a, b = bounds[kk], bounds[kk + 1]
        if b > a:
            out[kk] = (j[a:b], i[a:b])
    return out


def _dilate(ndi: Any, mask: Any, r_mm: float, p: float) -> Any:
    """``mask`` (2-D) grown by ``r_mm`` (Euclidean), computed on its bounding box plus r."""
    xp = array_module(mask)
    r = int(math.ceil(r_mm / p)) + 1
    rows = np.flatnonzero(to_numpy(mask.any(axis=1)))
    cols = np.flatnonzero(to_numpy(mask.any(axis=0)))
    out = xp.zeros_like(mask)
    if rows.size == 0:
        return out
    ny, nx = mask.shape
    ys = slice(max(0, rows[0] - r), min(ny, rows[-1] + r + 1))
    xs = slice(max(0, cols[0] - r), min(nx, cols[-1] + r + 1))
    out[ys, xs] = ndi.distance_transform_edt(~mask[ys, xs]) * p <= r_mm + 1e-9
    return out


def contour_length_per_layer(mesh: Any, z_mid_mm: np.ndarray) -> np.ndarray:
    """Length (mm) of the mesh's section by the plane at each layer's mid-height.

    Each triangle crossing the plane adds the segment between its long edge (lowest to
    highest vertex) and the edge on the other side of its middle vertex.
    """
    if hasattr(mesh, "mesh"):
        mesh = mesh.mesh
    zm = np.asarray(z_mid_mm, dtype=float)
    out = np.zeros(zm.shape[0])
    tri = np.asarray(mesh.triangles, dtype=float)
    if tri.size == 0 or zm.size == 0:
        return out
    order = np.argsort(tri[:, :, 2], axis=1)
    tri = np.take_along_axis(tri, order[:, :, None], axis=1)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    i0 = np.searchsorted(zm, a[:, 2], side="right")
    i1 = np.searchsorted(zm, c[:, 2], side="left")
    n = np.maximum(i1 - i0, 0)
    keep = n > 0
    a, b, c, i0, n = a[keep], b[keep], c[keep], i0[keep], n[keep]
    f = np.repeat(np.arange(n.size), n)
    k = np.repeat(i0 - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
    z = zm[k]
    A, B, C = a[f], b[f], c[f]

    def at(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
        dz = p1[:, 2] - p0[:, 2]
        t = np.where(dz > 0, (z - p0[:, 2]) / np.where(dz > 0, dz, 1.0), 0.0)
        return p0[:, :2] + t[:, None] * (p1[:, :2] - p0[:, :2])

    p = at(A, C)
    lower = z < B[:, 2]
    q = np.where(lower[:, None], at(A, B), at(B, C))
    seg = np.hypot(*(p - q).T)
    np.add.at(out, k, seg)
    return out


def sharp_corners_per_layer(
    mesh: Any, z_mid_mm: np.ndarray, min_turn_deg: float = 20.0
) -> np.ndarray:
    """Number of sharp contour corners in each layer, from the mesh's creased edges.

    A non-horizontal mesh edge whose two faces turn by more than ``min_turn_deg`` cuts
    every layer it spans in a corner of the contour, where the planner must slow to the
    jerk speed. Facetted curves (small turns per facet) are not counted.
    """
    if hasattr(mesh, "mesh"):
        mesh = mesh.mesh
    nz = int(np.asarray(z_mid_mm).shape[0])
    out = np.zeros(nz)
    try:
        angles = np.asarray(mesh.face_adjacency_angles)
        edges = np.asarray(mesh.face_adjacency_edges)
    except Exception:  # non-manifold input: no corner information
        return out
    if angles.size == 0:
        return out
    sharp = angles > math.radians(min_turn_deg)
    v = np.asarray(mesh.vertices)
    z = v[edges[sharp]][:, :, 2]
    z0, z1 = z.min(axis=1), z.max(axis=1)
    zm = np.asarray(z_mid_mm, dtype=float)
    i0 = np.searchsorted(zm, z0, side="left")
    i1 = np.searchsorted(zm, z1, side="left")
    diff = np.zeros(nz + 1)
    np.add.at(diff, i0, 1.0)
    np.add.at(diff, i1, -1.0)
    return np.cumsum(diff)[:nz]
