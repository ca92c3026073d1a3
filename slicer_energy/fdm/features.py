"""Per-layer feature decomposition of a voxelised part: what a slicer would extrude where.

Works on a :class:`~slicer_energy.voxelize.LayerGrid` whose z pitch is the layer height,
with one code path for NumPy and CuPy (per-layer transforms from :mod:`.grid_ops`).
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
* **islands** (where each lies, for the travel between them: :mod:`.travel`), holes,
  separate fill areas and support areas per layer, and the **skirt** (convex hull of the
  first layer, enough loops for ``min_skirt_length`` of filament).

Path length of a region = area / line spacing (× density for sparse infill and supports);
extruded volume = length × spacing × layer height (PrusaSlicer's bead cross-section).
Sparse infill adds the anchors that join line ends along the region's outline. Line
pieces per region (for acceleration penalties) come from the region's chords along the
grid rows and columns. Given the mesh, loops are capped by its section length per layer.
The few free constants (here, in :mod:`.regions` and :mod:`.supports`) were fitted to
PrusaSlicer 2.5 (``reference_parts.TRAINING`` names the training parts; docs/fdm-accuracy.md
reports accuracy on the others).

This module turns the measurements into paths; :mod:`.regions` is the slab pass that
classifies and measures the cells (on :mod:`.masks` primitives), :mod:`.supports` the
support columns, :mod:`.sections` what the mesh itself says per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..voxelize import LayerGrid
from .regions import FILL_REGIONS, LayerMeasures, band_limits, measure_layers
from .sections import contour_length_per_layer
from .settings import PrintSettings
from .supports import overhang_cells, support_paths

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
# The PrintSettings width each feature is laid at.
BEAD_WIDTH = {
    "external_perimeter": "w_external_perimeter_mm",
    "perimeter": "w_perimeter_mm",
    "solid_infill": "w_solid_infill_mm",
    "top_solid_infill": "w_top_infill_mm",
    "bridge_infill": "w_solid_infill_mm",
    "internal_infill": "w_infill_mm",
    "support_material": "w_support_mm",
    "support_material_interface": "w_support_mm",
    "skirt_brim": "w_first_layer_mm",
}
# Fitted to PrusaSlicer 2.5's G-code of the training parts (reference_parts.TRAINING): the
# gyroid's path per area is 0.967 of area·density/spacing, and its anchors add 0.374 of the
# sparse region's outline estimate.
GYROID_AREA_FACTOR = 0.967
ANCHOR_BOUNDARY_FACTOR = 0.374


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
    fill_holes: np.ndarray  # holes in the solid infill regions per layer
    fill_parts: np.ndarray  # separate areas of the fill regions per layer
    inner_paths: np.ndarray  # Arachne's separate inner-bead paths per layer
    holes: np.ndarray  # holes of the section per layer (each a contour)
    support_islands: np.ndarray  # separate support areas per layer
    extent_mm: tuple[float, float, float]
    # per layer, [[x, y, area], ...] (mm) of the part's islands and of the support areas,
    # and [[x, y, area, island], ...] of the holes (island: the row of islands_at around it)
    islands_at: dict[int, np.ndarray] = field(default_factory=dict)
    supports_at: dict[int, np.ndarray] = field(default_factory=dict)
    holes_at: dict[int, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def nz(self) -> int:
        return int(self.z_top_mm.shape[0])

    def total_length_mm(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.length_mm.items()}

    def total_volume_mm3(self) -> float:
        return float(sum(v.sum() for v in self.volume_mm3.values()))


def decompose(
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
    nz, ny, nx = grid.shape
    p, h = grid.pitch_xy, grid.pitch_z
    if abs(h - s.layer_height_mm) > 1e-6:
        raise ValueError(f"grid z pitch {h} mm differs from the layer height {s.layer_height_mm}")
    meas = measure_layers(grid, s, memory_budget_mb)
    lay = _Layers(s, nz, h)
    area = {k: meas.area.get(k, np.zeros(nz)) for k in FEATURES}
    length = {k: np.zeros(nz) for k in FEATURES}
    pieces = {k: np.zeros(nz) for k in FEATURES}
    length["external_perimeter"], inner_band = _perimeter_lengths(grid, s, meas, lay, mesh)
    length["perimeter"], to_ext = _arachne_inner(s, meas, lay, inner_band)
    pieces["external_perimeter"] = meas.loops.copy()
    pieces["perimeter"] = np.maximum(meas.loops * max(0, s.perimeters - 1), meas.inner_paths)
    for into, part in zip((length, pieces), _infill_paths(s, meas, lay), strict=True):
        into.update(part)
    # Skirt: loops around the convex hull of the first layer(s), offset by the distance.
    n_skirt = min(nz, s.skirt_height_layers)
    length["skirt_brim"][:n_skirt] = _skirt_length_mm(grid, s, filament_diameter_mm)
    pieces["skirt_brim"][:n_skirt] = s.skirt_loops
    vol = {k: np.zeros(nz) for k in FEATURES}
    for name in FEATURES:
        if not name.startswith("support_"):
            vol[name] = length[name] * lay.spacing(getattr(s, BEAD_WIDTH[name])) * lay.h_l
    # Arachne's beads fill the perimeter bands whatever their count: the volume stays the
    # bands', the part of the inner band that thin sections give to the external beads there.
    v_in = inner_band * lay.spacing(s.w_perimeter_mm) * lay.h_l
    vol["perimeter"], vol["external_perimeter"] = (
        v_in * (1 - to_ext),
        vol["external_perimeter"] + v_in * to_ext,
    )
    vol["bridge_infill"] *= s.bridge_flow_ratio
    sup_islands, sup_at = np.zeros(nz), {}  # separate support areas
    if s.supports:
        extra = overhang_cells(mesh, grid, s.support_threshold_deg) if mesh is not None else None
        sup = support_paths(grid, s, meas.d_out, lay.h_l, extra)
        for into, part in ((area, sup.area_mm2), (length, sup.length_mm), (vol, sup.volume_mm3)):
            into.update(part)
        pieces.update(sup.pieces)
        sup_islands, sup_at = sup.islands, sup.islands_at
    return LayerFeatures(
        layer_height_mm=h,
        z_top_mm=grid.layer_top_mm(),
        area_mm2=area,
        length_mm=length,
        volume_mm3=vol,
        pieces=pieces,
        small_perimeter_fraction=meas.small_perimeter_fraction,
        islands=meas.islands,
        loops=meas.loops,
        fill_holes=meas.fill_holes,
        fill_parts=meas.fill_parts,
        inner_paths=meas.inner_paths,
        holes=meas.holes,
        support_islands=sup_islands,
        extent_mm=(nx * p, ny * p, nz * h),
        islands_at=meas.islands_at,
        supports_at=sup_at,
        holes_at=meas.holes_at,
        info={"slab_layers": meas.slab_layers, "slabs": meas.slabs},
    )


class _Layers:
    """Per-layer bead heights and line spacings: the first layer has its own."""

    def __init__(self, s: PrintSettings, nz: int, h: float) -> None:
        self.s, self.h = s, h
        self.first = np.zeros(nz, dtype=bool)
        self.first[0] = True
        self.h_l = np.where(self.first, s.first_layer_height_mm, h)

    def spacing(self, width: float) -> np.ndarray:
        """Line spacing of beads ``width`` wide (the first layer's own width there)."""
        s = self.s
        return np.where(
            self.first,
            s.spacing_mm(s.w_first_layer_mm, s.first_layer_height_mm),
            s.spacing_mm(width, self.h),
        )


def _perimeter_lengths(
    grid: LayerGrid, s: PrintSettings, meas: LayerMeasures, lay: _Layers, mesh: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Centre-line length of the external loops and of the inner ones: band area / width."""
    lim_first, lim = band_limits(s, grid.pitch_z, True), band_limits(s, grid.pitch_z, False)
    first = lay.first
    t1_l = np.where(first, lim_first[0], lim[0])
    band_inner = np.where(first, lim_first[1] - lim_first[0], lim[1] - lim[0])
    n_inner = max(0, s.perimeters - 1)
    ext = meas.area["external_perimeter"] / np.maximum(t1_l, 1e-9)
    inner = np.zeros(grid.shape[0])
    if n_inner:
        inner = meas.area["perimeter"] / np.maximum(band_inner, 1e-9) * n_inner
    if mesh is None:
        return ext, inner
    # The voxel outline is a staircase: on edges at odd angles its bands overstate the
    # loop length at coarse cells. A loop is never longer than the mesh's own section
    # (plus the growth of the loops around holes, which are offset outwards).
    l_mesh = contour_length_per_layer(mesh, grid.layer_z_mm())
    holes = np.maximum(meas.loops - meas.islands, 0)
    w_ext = np.where(first, s.w_first_layer_mm, s.w_external_perimeter_mm)
    cap_ext = l_mesh + 2 * math.pi * (w_ext / 2) * holes
    cap_per = n_inner * (l_mesh + 2 * math.pi * (t1_l + band_inner / 2) * holes)
    return np.minimum(ext, cap_ext), np.minimum(inner, cap_per)


def _arachne_inner(
    s: PrintSettings, meas: LayerMeasures, lay: _Layers, inner_band: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inner perimeter length as Arachne lays it (:mod:`.arachne`), scaled like the band
    length ``inner_band`` (which the mesh may have capped), and the share of the band's
    volume that goes to the external beads of thin sections."""
    n_inner = max(0, s.perimeters - 1)
    area = meas.area["perimeter"]
    if not n_inner:
        return inner_band, np.zeros_like(area)
    lim_first, lim = band_limits(s, lay.h, True), band_limits(s, lay.h, False)
    per_bead = np.where(lay.first, lim_first[1] - lim_first[0], lim[1] - lim[0]) / n_inner
    # The slab pass measured both on the same cells: the ratio of its Arachne length to the
    # band length (band area / per-bead width) carries over to the capped length.
    band = area / np.maximum(per_bead, 1e-9)
    ok = band > 1e-9
    ratio = np.where(ok, meas.inner_bead_mm / np.where(ok, band, 1.0), 0.0)
    to_ext = np.where(ok, np.clip(meas.inner_to_external_mm2 / np.where(ok, area, 1.0), 0, 1), 0)
    return inner_band * ratio, to_ext


def _infill_paths(
    s: PrintSettings, meas: LayerMeasures, lay: _Layers
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Path length and line pieces of each fill region from its area and chords."""
    length: dict[str, np.ndarray] = {}
    pieces: dict[str, np.ndarray] = {}
    for name in FILL_REGIONS:
        dens = s.infill_density if name == "internal_infill" else 1.0
        spacing = lay.spacing(getattr(s, BEAD_WIDTH[name]))
        length[name] = meas.area[name] * dens / spacing
        # Chords of the region across the fill direction, thinned by the line spacing.
        pieces[name] = meas.chords[name] * dens / spacing
    if s.infill_density > 0:
        # Sparse infill: the pattern's own lines plus the anchors that join line ends along
        # the region's outline (PrusaSlicer 2.5 infill_anchor, up to 12 mm each).
        f_area = GYROID_AREA_FACTOR if s.infill_pattern == "gyroid" else 1.0
        length["internal_infill"] = (
            f_area * length["internal_infill"] + ANCHOR_BOUNDARY_FACTOR * meas.sparse_outline_mm
        )
    return length, pieces


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
    p = grid.pitch_xy
    pts = np.concatenate(
        [np.stack([ii + dx, jj + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]
    ).astype(float)
    perim = hull_perimeter(pts * p)
    if perim == 0.0:  # degenerate (a line): fall back to the bounding box
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


def hull_perimeter(pts: np.ndarray) -> float:
    """Perimeter of the convex hull of 2-D points (0 when they are collinear).

    Andrew's monotone chain over the lowest and highest point of each distinct x (only those
    can be hull vertices), so the Python loop runs over columns, not points; it replaces
    scipy.spatial.ConvexHull, whose import alone costs ``predict`` about 0.17 s.
    """
    pts = np.asarray(pts, dtype=float).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    x, y = pts[order, 0], pts[order, 1]
    first = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    last = np.r_[first[1:], len(x)] - 1
    lows = list(zip(x[first].tolist(), y[first].tolist(), strict=True))
    highs = list(zip(x[last].tolist(), y[last].tolist(), strict=True))

    def chain(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for px, py in points:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (py - ay) - (by - ay) * (px - ax) > 0:
                    break
                out.pop()
            out.append((px, py))
        return out

    lower = chain(lows + highs[-1:])  # left to right, up the right edge
    upper = chain(highs[::-1] + lows[:1])  # right to left, down the left edge
    ring = lower[:-1] + upper[:-1]
    if len(ring) < 3:
        return 0.0
    v = np.array(ring + ring[:1])
    return math.fsum(np.hypot(*np.diff(v, axis=0).T).tolist())
