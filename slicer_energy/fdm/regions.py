"""The slab pass of the feature decomposition: what each layer's cells become, and how much.

The grid is worked in z slabs (with a halo of neighbouring layers) so that memory stays
bounded. For every layer it measures the perimeter band areas (sub-cell accurate), the
solid, top, bridge and sparse infill regions with their row and column chords, islands,
contour loops (and how much of them is small-perimeter), holes and solid lines cut by holes,
and, when supports are on, each layer's distance outside the part. Lengths and volumes are
derived from these in :mod:`.features`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import array_module, to_numpy
from ..errors import SettingsError
from ..voxelize import LayerGrid
from .arachne import carried_beads, central_slope, transition_widths
from .grid_ops import ops_for
from .masks import (
    beyond,
    components,
    count_holes,
    edt_layers,
    fraction_beyond,
    grow_into,
    hole_components,
    label_cells,
    label_compact,
    runs,
)
from .repeats import expand, kept_layers
from .settings import PrintSettings
from .shells import SHELL_OPENING_SPACINGS, air_within, grown_surface_shells, vertical_shells
from .slab import Pass, Slab

SMALL_PERIMETER_MM = 2.0 * math.pi * 6.5  # PrusaSlicer SMALL_PERIMETER_LENGTH
# Fill lines (with a turn each) per row chord of a region, as fitted together with the
# travel and gyroid constants of time.py (the same training parts).
CHORD_FACTOR = 1.0 / math.sqrt(2.0)
# LayerRegion::process_external_surfaces grows top surfaces by EXTERNAL_INFILL_MARGIN (3 mm)
# into the layer's internal infill (libslic3r.h), for anchoring.
EXTERNAL_INFILL_MARGIN_MM = 3.0
# Fill areas smaller than this many solid line spacings squared are the voxel outline's
# fragments, not areas PrusaSlicer fills (and travels to) on their own. Chosen from 0, 2 and 3
# on the cookie cutter, Benchy, the robot vase, the block and the bionic bracket (3 made their
# travel counts match PrusaSlicer's G-code best), so those count as fitted on for it.
FILL_PART_MIN_SPACINGS = 3.0
# Bytes of working memory per slab cell (EDT float64, labels, masks).
_BYTES_PER_CELL = 40
# Overrides the number of slabs measured at once (slab_threads).
THREADS_ENV = "SLICER_ENERGY_THREADS"
FILL_REGIONS = ("solid_infill", "top_solid_infill", "bridge_infill", "internal_infill")


def band_limits(s: PrintSettings, h: float, first: bool) -> tuple[float, float]:
    """Distances from the contour (mm) where the external loop ends and where the shell of
    all perimeters ends, for the first layer (its own widths and height) or the others."""
    we = s.w_first_layer_mm if first else s.w_external_perimeter_mm
    wp = s.w_first_layer_mm if first else s.w_perimeter_mm
    hh = s.first_layer_height_mm if first else h
    se, sp = s.spacing_mm(we, hh), s.spacing_mm(wp, hh)
    if s.perimeters == 0:
        return 0.0, 0.0
    t1 = we / 2 + (0.5 * (se + sp) / 2 if s.perimeters > 1 else se / 2)
    tshell = we / 2 + (0.5 * (se + sp) if s.perimeters > 1 else 0.0)
    tshell += max(0, s.perimeters - 2) * sp + (sp / 2 if s.perimeters > 1 else se / 2)
    return t1, tshell


@dataclass
class LayerMeasures:
    """Per-layer results of the slab pass (NumPy arrays of length ``nz``)."""

    area: dict[str, np.ndarray]  # mm², the two perimeter bands and the FILL_REGIONS
    chords: dict[str, np.ndarray]  # fill lines per region before thinning by the spacing
    small_perimeter_fraction: np.ndarray
    sparse_outline_mm: np.ndarray  # outline length of the sparse infill region
    fill_holes: np.ndarray  # holes in the solid regions
    fill_parts: np.ndarray  # separate areas of the four fill regions together
    islands: np.ndarray
    loops: np.ndarray
    islands_at: dict[int, np.ndarray] = field(default_factory=dict)  # [[x, y, area], ...] mm
    # Arachne's inner beads (:func:`_arachne_inner`): their length, the inner band area it
    # gives to the external beads instead, and its separate inner paths.
    inner_bead_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inner_to_external_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inner_paths: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # The holes of the section (each a contour of its own), and where: [[x, y, area, island
    # index in islands_at], ...] mm (masks.hole_components).
    holes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    holes_at: dict[int, np.ndarray] = field(default_factory=dict)
    d_out: dict[int, Any] = field(default_factory=dict)  # distance outside the part, per layer
    slab_layers: int = 0
    slabs: int = 0


def measure_layers(
    grid: LayerGrid,
    s: PrintSettings,
    memory_budget_mb: float = 512.0,
    threads: int | None = None,
    repeats: bool = True,
) -> LayerMeasures:
    """Run the slab pass over ``grid`` (``pitch_z`` = the layer height) under settings ``s``.

    Slabs are independent (each reads its halo of neighbouring layers and writes only its own
    layers), and their results do not depend on where the slabs are cut, so on the CPU
    ``threads`` slabs (default :func:`slab_threads`) run at once, sharing the memory budget:
    OpenCV's transforms and labelling (:mod:`.grid_ops`) and NumPy's array operations
    release the GIL.
    With ``repeats``, long runs of identical layers are measured once (:mod:`.repeats`).
    """
    keep = kept_layers(grid.occupancy, halo_layers(s)) if repeats else None
    if keep is None:
        return _measure(grid.occupancy, grid.pitch_xy, grid.pitch_z, s, memory_budget_mb, threads)
    occ = grid.occupancy[grid.xp.asarray(keep)]
    out = _measure(occ, grid.pitch_xy, grid.pitch_z, s, memory_budget_mb, threads)
    return expand(out, keep, grid.shape[0])


def halo_layers(s: PrintSettings) -> int:
    """Layers on either side of a layer that its measures read (the vertical shells' reach)."""
    return max(s.top_layers_eff, s.bottom_layers_eff) + 1


def _measure(
    occ: Any, p: float, h: float, s: PrintSettings, memory_budget_mb: float, threads: int | None
) -> LayerMeasures:
    """:func:`measure_layers` of the occupancy ``occ`` (pitch ``p``, layers ``h`` high)."""
    xp = array_module(occ)
    nz, ny, nx = occ.shape
    g = Pass(
        xp=xp,
        ops=ops_for(xp),
        nz=nz,
        p=p,
        nt=s.top_layers_eff,
        nb=s.bottom_layers_eff,
        lim_first=band_limits(s, h, True),
        lim=band_limits(s, h, False),
        w_open=SHELL_OPENING_SPACINGS * s.spacing_mm(s.w_solid_infill_mm, h),
        a_fill_min=(FILL_PART_MIN_SPACINGS * s.spacing_mm(s.w_solid_infill_mm, h)) ** 2,
        supports=s.supports,
        beads=(transition_widths(s, s.first_layer_height_mm, True), transition_widths(s, h)),
        perimeters=s.perimeters,
        central_slope=central_slope(s),
    )
    halo = halo_layers(s)
    workers = max(1, threads if threads is not None else slab_threads(xp))
    budget = memory_budget_mb / workers
    slab = int(max(1, (budget * 2**20) // (_BYTES_PER_CELL * (ny + 2) * (nx + 2))))
    slab = max(1, min(nz, slab - 2 * halo if slab > 4 * halo else slab))
    per_thread = min(workers, nz // 2)  # one slab per thread, of two layers at least
    if per_thread > 1:
        slab = min(slab, math.ceil(nz / per_thread))
    n_slabs = math.ceil(nz / slab)
    out = LayerMeasures(
        area={k: np.zeros(nz) for k in ("external_perimeter", "perimeter", *FILL_REGIONS)},
        chords={k: np.zeros(nz) for k in FILL_REGIONS},
        small_perimeter_fraction=np.zeros(nz),
        sparse_outline_mm=np.zeros(nz),
        fill_holes=np.zeros(nz),
        fill_parts=np.zeros(nz),
        islands=np.zeros(nz),
        loops=np.zeros(nz),
        inner_bead_mm=np.zeros(nz),
        inner_to_external_mm2=np.zeros(nz),
        inner_paths=np.zeros(nz),
        holes=np.zeros(nz),
        slab_layers=slab,
        slabs=n_slabs,
    )
    cuts = [(si * slab, min(nz, (si + 1) * slab)) for si in range(n_slabs)]
    if workers == 1 or n_slabs == 1:
        for k0, k1 in cuts:
            _measure_slab(g, occ, k0, k1, halo, out)
        return out
    with ThreadPoolExecutor(min(workers, n_slabs)) as pool:
        jobs = [pool.submit(_measure_slab, g, occ, k0, k1, halo, out) for k0, k1 in cuts]
        for job in jobs:
            job.result()  # re-raises a slab's error
    return out


def slab_threads(xp: Any) -> int:
    """Slabs measured at once: ``$SLICER_ENERGY_THREADS``, else one per CPU this process may
    use, at most 8 (a cap chosen, not measured: each slab in flight adds its halo's work and
    thins the memory budget); one on CuPy, whose kernels already fill the device."""
    if xp is not np:
        return 1
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise SettingsError(f"${THREADS_ENV} must be a whole number, not {env!r}") from None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cpus or 1))


def _measure_slab(g: Pass, occ: Any, k0: int, k1: int, halo: int, out: LayerMeasures) -> None:
    """Measure layers ``k0..k1-1`` into ``out``."""
    xp = g.xp
    a0, a1 = max(0, k0 - halo), min(g.nz, k1 + halo)
    ys, xs = _occupied(occ[a0:a1])
    S = xp.pad(occ[a0:a1, ys, xs], ((0, 0), (1, 1), (1, 1)))
    dw = edt_layers(g.ops, xp, S, g.p)
    xp.copyto(dw, -g.p / 2, where=~S)
    d = xp.full((a1 - a0, occ.shape[1] + 2, occ.shape[2] + 2), -g.p / 2, dtype=dw.dtype)
    d[:, ys.start : ys.stop + 2, xs.start : xs.stop + 2] = dw
    tshell = g.per_layer(xp.arange(a0, a1), 1)
    sb = Slab(k0, k1, a0, a1, S, d, tshell, dw, ys.start, xs.start)
    interior = dw > sb.tshell
    core_all = interior[sb.j0 - a0 : k1 - a0]
    shell = vertical_shells(g, sb, core_all)
    # PrusaSlicer's shell window also takes the top and bottom surfaces of the
    # neighbouring layers after they were grown by the 3 mm margin (plus one
    # min_perimeter_infill_spacing): solid under a top reaches that far beyond it.
    shell |= grown_surface_shells(g, sb, interior, EXTERNAL_INFILL_MARGIN_MM + g.w_open)
    solid_all = core_all & shell
    sparse_all = core_all & ~solid_all
    o = k0 - sb.j0
    regions = _fill_regions(g, sb, solid_all[o:], sparse_all)
    _islands_and_loops(g, sb, out)
    scale = _perimeter_bands(g, sb, core_all[o:], out)
    _arachne_inner(g, sb, out)
    _fill_parts(g, sb, regions, out)
    _region_areas_and_chords(g, sb, regions, scale, out)
    if g.supports:
        Sk = xp.pad(occ[k0:k1], ((0, 0), (1, 1), (1, 1)))
        dout = edt_layers(g.ops, xp, ~Sk, g.p).astype(xp.float32)
        for i, k in enumerate(range(k0, k1)):
            out.d_out[k] = dout[i]


def _occupied(occ: Any) -> tuple[slice, slice]:
    """Rows and columns (of the unpadded grid) of the bounding box of ``occ``'s cells over
    all its layers; one empty cell where there are none."""
    rows = np.flatnonzero(to_numpy(occ.any(axis=(0, 2))))
    cols = np.flatnonzero(to_numpy(occ.any(axis=(0, 1))))
    if rows.size == 0:
        return slice(0, 1), slice(0, 1)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _fill_regions(g: Pass, sb: Slab, solid: Any, sparse_all: Any) -> dict[str, Any]:
    """Solid, top solid, bridge and sparse infill of layers ``k0..k1-1`` (FILL_REGIONS).

    ``sparse_all`` starts at layer ``j0``, so the layer below the slab is known too.
    """
    xp, S, sl = g.xp, sb.S, sb.here
    Sc = S[sl]
    none = xp.zeros((1,) + Sc.shape[1:], dtype=bool)
    above = S[sl.start + 1 : sl.stop + 1]
    if above.shape[0] < Sc.shape[0]:  # top of the part: air above
        above = xp.concatenate([above, none])
    if sb.k0 > 0:
        below_air = ~S[sl.start - 1 : sl.stop - 1]
        below_sparse = sparse_all[:-1]
    else:
        below_air = xp.concatenate([none, ~Sc[:-1]])
        below_sparse = xp.concatenate([none, sparse_all[:-1]])
    top = solid & ~above
    # Solid over air, or a top skin's lowest layer over sparse infill, is laid as a
    # bridge (PrusaSlicer's bridge infill); vertical-shell solid over sparse is not.
    air_above = air_within(g, sb)
    bridge = solid & (below_air | (below_sparse & air_above)) & ~top
    solid_int = solid & ~top & ~bridge
    sparse = sparse_all[sb.k0 - sb.j0 :].copy()
    # Bridges over air and top surfaces take the internal infill within the margin.
    m_ext = EXTERNAL_INFILL_MARGIN_MM
    grow_into(g.ops, bridge & below_air, bridge, (solid_int, sparse), g.p, m_ext)
    grow_into(g.ops, top, top, (solid_int, sparse), g.p, m_ext)
    return dict(zip(FILL_REGIONS, (solid_int, top, bridge, sparse), strict=True))


def _islands_and_loops(g: Pass, sb: Slab, out: LayerMeasures) -> None:
    """Islands and their holes (each with where it lies), contour loops (labelled external
    bands) per layer, and the share of the loops' cells in loops shorter than
    SMALL_PERIMETER_MM."""
    xp, nz, k0, k1 = g.xp, g.nz, sb.k0, sb.k1
    Sc = sb.S[sb.here]
    isl = label_compact(g.ops, xp, Sc, sb.y0, sb.x0)
    out.islands[k0:k1] = np.bincount(isl.layer_of(), minlength=k1 - k0)
    out.islands_at.update(components(xp, isl, k0, g.p))
    out.holes[k0:k1], holes_at = hole_components(g.ops, xp, Sc, isl, k0, g.p)
    out.holes_at.update(holes_at)
    del isl
    ext = Sc & (sb.dw[sb.here] <= g.per_layer(xp.arange(k0, k1), 0))
    ring = label_compact(g.ops, xp, ext)
    n_ring = ring.n
    if not n_ring:
        return
    ring_cells = label_cells(xp, ring)
    lay = xp.asarray(k0 + ring.layer_of())
    t1_ring = xp.where(lay == 0, g.lim_first[0], g.lim[0])
    ring_len = ring_cells * g.cell_a / t1_ring
    small = ring_len < SMALL_PERIMETER_MM
    tot = xp.bincount(lay, weights=ring_cells.astype(xp.float64), minlength=nz)[:nz]
    sm = xp.bincount(lay, weights=(ring_cells * small).astype(xp.float64), minlength=nz)
    out.small_perimeter_fraction[k0:k1] = to_numpy(sm[:nz][k0:k1] / xp.maximum(tot[k0:k1], 1))
    out.loops[k0:k1] = to_numpy(xp.bincount(lay, minlength=nz)[:nz][k0:k1])


def _perimeter_bands(g: Pass, sb: Slab, core: Any, out: LayerMeasures) -> np.ndarray:
    """Band areas with sub-cell accuracy (each cell counts the fraction of it beyond the
    band's limit); returns the factor that scales the core's cell count to its area."""
    k0, k1, cell_a = sb.k0, sb.k1, g.cell_a
    dc = sb.d[sb.here]
    t1 = g.per_layer(g.xp.arange(k0, k1), 0)
    a_all, a_t1, a_ts = (beyond(g.xp, dc, t, g.p) * cell_a for t in (0.0, t1, sb.tshell[sb.here]))
    out.area["external_perimeter"][k0:k1] = a_all - a_t1
    out.area["perimeter"][k0:k1] = a_t1 - a_ts
    n_core = to_numpy(core.sum(axis=(1, 2))).astype(float)
    return np.where(n_core > 0, a_ts / np.maximum(n_core * cell_a, 1e-12), 0.0)


def _arachne_inner(g: Pass, sb: Slab, out: LayerMeasures) -> None:
    """Arachne's inner beads on thin sections (:mod:`.arachne`), per layer.

    Along a thin section's ridge the cells beyond the external band (``d > t1``) are one
    strip ``c = W - 2·t1`` wide, ``W`` the section's width. ``c`` is measured from their
    sub-cell fractions: their Gaussian blur (σ the inner band's width) at the strip's
    middle is ``erf(c / (2√2 σ))`` for a straight strip at any angle, so the largest blur
    within σ of a cell gives the ``c`` of its strip. The bead count of ``W = 2·t1 + c``
    (the transition filter is not modelled) sets the inner beads along the ridge: ``n - 2``
    per ridge length where the band model counts the band's width across / bead spacing;
    sections of two beads or fewer give their inner band to the two widened external
    beads, sections wide enough for infill keep the band model's loops. A thin section's
    widest point hands its beads down to its ends as offset paths instead where it has more
    (:func:`.arachne.carried_beads`). Each connected
    region of inner beads is a path of its own.
    """
    xp, ops, p, k0, k1 = g.xp, g.ops, g.p, sb.k0, sb.k1
    n_in = max(g.perimeters - 1, 0)
    if not n_in:
        return
    dc = (sb.d if sb.dw is None else sb.dw)[sb.here]  # the slab's window around its cells
    ks = xp.arange(k0, k1)
    t1 = g.per_layer(ks, 0)
    sigma = max(g.lim[1] - g.lim[0], g.lim_first[1] - g.lim_first[0])
    m = int(math.ceil(sigma / p))
    yy, xx = np.mgrid[-m : m + 1, -m : m + 1]
    fp = np.hypot(yy, xx) * p <= sigma + 1e-9
    beyond_t1 = fraction_beyond(xp, dc, t1, p)
    blur = ops.blur(beyond_t1, sigma / p, mode="constant")
    if fp.sum() > 1:  # a footprint of one cell (σ under the pitch) leaves the blur as it is
        blur = ops.dilate(blur, fp)
    # The rest only on the inner band's cells; those beyond it are walls around infill.
    beyond_ts = fraction_beyond(xp, dc, sb.tshell[sb.here], p)
    beyond_t1 -= beyond_ts
    on = xp.flatnonzero(beyond_t1 > 0)  # flat indices: one array, and gathers of these only
    kk = on // (dc.shape[1] * dc.shape[2])
    first = (kk + k0) == 0
    t1_c = xp.where(first, g.lim_first[0], g.lim[0])
    ts_c = sb.tshell[sb.here][:, 0, 0][kk]
    band = beyond_t1.ravel()[on]
    c_over_s = np.linspace(0.0, 8.0, 801)
    erf_tab = np.array([math.erf(v / (2 * math.sqrt(2.0))) for v in c_over_s])
    cover = sigma * xp.interp(blur.ravel()[on], xp.asarray(erf_tab), xp.asarray(c_over_s))
    del blur, beyond_t1
    thr = [xp.where(first, float(a), float(b)) for a, b in zip(*g.beads, strict=True)]
    n = sum((2 * t1_c + cover >= t).astype(xp.int8) for t in thr)
    full = n >= len(thr)
    beads_in = xp.where(full, 2 * n_in, xp.clip(n.astype(xp.float32) - 2, 0, 2 * n_in))
    across = xp.minimum(cover, 2 * (ts_c - t1_c))  # the band's width across the ridge
    ridge = band / xp.maximum(across, p / 4)
    length = xp.where(full, band * n_in / (ts_c - t1_c), ridge * beads_in)
    # The beads a thin section's widest point hands down to its ends (.arachne).
    m, l_car = carried_beads(xp, ops, dc, on, (t1_c, p, ridge, length), thr, g.central_slope)
    length, beads_in = xp.where(m >= 2, l_car, length), xp.maximum(beads_in, m)
    nl_k = k1 - k0
    per_layer = xp.bincount(kk, weights=length, minlength=nl_k)
    out.inner_bead_mm[k0:k1] = to_numpy(per_layer) * g.cell_a
    per_layer = xp.bincount(kk, weights=xp.where(beads_in > 0, 0.0, band), minlength=nl_k)
    out.inner_to_external_mm2[k0:k1] = to_numpy(per_layer) * g.cell_a
    zone = beyond_ts > 0
    zone.ravel()[on] |= beads_in > 0
    zone &= dc > t1
    del on, kk, band, cover, beads_in, length, beyond_ts
    c = label_compact(ops, xp, zone)
    if c.n:
        out.inner_paths[k0:k1] = np.bincount(c.layer_of(), minlength=nl_k)
    del c, zone


def _fill_parts(g: Pass, sb: Slab, regions: dict[str, Any], out: LayerMeasures) -> None:
    """Holes in the solid regions, and the separate areas of every fill region (PrusaSlicer
    fills each area of each region on its own, reached by a travel)."""
    k0, k1, xp = sb.k0, sb.k1, g.xp
    filled = regions["solid_infill"] | regions["top_solid_infill"] | regions["bridge_infill"]
    out.fill_holes[k0:k1] = count_holes(g.ops, xp, filled)
    for m in regions.values():
        c = label_compact(g.ops, xp, m)
        if not c.n:
            continue
        cnt = to_numpy(label_cells(xp, c))
        big = cnt * g.p * g.p >= g.a_fill_min
        out.fill_parts[k0:k1] += np.bincount(c.layer_of()[big], minlength=k1 - k0)


def _region_areas_and_chords(
    g: Pass, sb: Slab, regions: dict[str, Any], scale: np.ndarray, out: LayerMeasures
) -> None:
    """Area, chords and (sparse infill) outline length of each fill region per layer."""
    k0, k1, p = sb.k0, sb.k1, g.p
    for name, m in regions.items():
        # Top and bridge regions are on few layers: count only those.
        cells, rx, ry = np.zeros((3, k1 - k0))
        on = np.flatnonzero(to_numpy(m.any(axis=(1, 2))))
        if on.size:
            sub = m if on.size == m.shape[0] else m[g.xp.asarray(on)]
            cells[on] = to_numpy(sub.sum(axis=(1, 2)))
            # Chords of the region (one fill line each, before thinning by the spacing).
            rx[on] = to_numpy(runs(sub))
            ry[on] = to_numpy(runs(sub, axis=1))
        out.area[name][k0:k1] = cells * g.cell_a * scale
        # Fill lines alternate between +45° and -45°: over both, a thin band of length
        # L along x or y is crossed by L/(√2·spacing) lines, which the larger of the row
        # and column chord counts gives; for compact regions both are alike.
        out.chords[name][k0:k1] = np.maximum(rx, ry) * p * CHORD_FACTOR
        if name == "internal_infill":
            # Outline length from crossings of rows and columns (Cauchy-Crofton style;
            # its constant factor is absorbed by the fitted ANCHOR_BOUNDARY_FACTOR).
            cross = 2 * p * (rx + ry + math.sqrt(2.0) * rx)
            out.sparse_outline_mm[k0:k1] = (math.pi / 2) * cross / 4
