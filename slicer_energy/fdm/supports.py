"""Support material of the feature decomposition: contacts under overhangs, columns down to
the plate or the part, interfaces and the widened first layer.

Overhangs are cells farther than ``h / tan(threshold)`` from the layer below, plus (given the
mesh) the cells under its own downward faces; contact areas grow by
SUPPORT_CONTACT_GROWTH_MM and are projected down, kept ``xy_spacing`` from the part; the top
``interface_layers`` are dense; the first layer is widened and dense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..voxelize import LayerGrid
from .grid_ops import ops_for
from .masks import Labels, components, dilate, runs
from .settings import PrintSettings

# PrusaSlicer 2.5 (grid style, closing radius 2 mm) grows the support contact areas beyond
# the projected overhang; modelled as a dilation of every layer's contact area by this
# distance, fitted on the headphone stand with supports (held out: the iPhone 6 case).
SUPPORT_CONTACT_GROWTH_MM = 2.0


@dataclass
class SupportPaths:
    """Per-layer support base and interface (NumPy arrays of length ``nz``)."""

    area_mm2: dict[str, np.ndarray]
    length_mm: dict[str, np.ndarray]
    volume_mm3: dict[str, np.ndarray]
    pieces: dict[str, np.ndarray]
    islands: np.ndarray  # separate support areas per layer (each reached by a travel)
    islands_at: dict[int, np.ndarray]  # per layer, [[x, y, area], ...] of those areas (mm)


def support_paths(
    grid: LayerGrid,
    s: PrintSettings,
    d_out: dict[int, Any],
    h_l: np.ndarray,
    extra_contacts: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> SupportPaths:
    """Support columns under overhangs, swept from the top layer down.

    ``d_out``: each layer's in-plane distance outside the part (padded grid, mm); ``h_l``:
    each layer's height; ``extra_contacts``: cells under the mesh's overhanging faces
    (:func:`overhang_cells`).
    """
    contact_at = _contacts(grid, s, d_out, extra_contacts)
    a_base, a_if, runs_base, islands_at = _columns(grid, s, d_out, contact_at)
    islands = np.zeros(grid.shape[0])
    for k, c in islands_at.items():
        islands[k] = len(c)
    h = grid.pitch_z
    sp = s.spacing_mm(s.w_support_mm, h)
    dens_base = np.full(grid.shape[0], sp / (s.support_spacing_mm + sp))
    dens_base[0] = s.support_first_layer_density  # raft_first_layer_density
    dens_if = min(1.0, sp / (s.support_interface_spacing_mm + sp))
    length_base = a_base * dens_base / sp
    length_if = a_if * dens_if / sp
    return SupportPaths(
        area_mm2={"support_material": a_base, "support_material_interface": a_if},
        length_mm={"support_material": length_base, "support_material_interface": length_if},
        volume_mm3={
            "support_material": length_base * sp * h_l,
            "support_material_interface": length_if * sp * h_l,
        },
        pieces={
            "support_material": runs_base * dens_base / sp,
            "support_material_interface": length_if / 5.0,
        },
        islands=islands,
        islands_at=islands_at,
    )


def _solid(d_out_k: Any, p: float) -> Any:
    return d_out_k <= -p / 2 + 1e-9


def _contacts(
    grid: LayerGrid,
    s: PrintSettings,
    d_out: dict[int, Any],
    extra_contacts: dict[int, tuple[np.ndarray, np.ndarray]] | None,
) -> dict[int, Any]:
    """Contact area under each layer k ≥ 1: its solid cells farther than ``r_thr`` from the
    solid of layer k-1, and the mesh's overhang cells, grown by the contact growth."""
    xp, ops = grid.xp, ops_for(grid.xp)
    h, p = grid.pitch_z, grid.pitch_xy
    r_thr = h / math.tan(math.radians(max(s.support_threshold_deg, 1e-3)))
    grow = SUPPORT_CONTACT_GROWTH_MM
    contact_at: dict[int, Any] = {}
    for k in range(1, grid.shape[0]):
        c = (d_out[k - 1] > r_thr) & _solid(d_out[k], p)  # solid at k, far at k-1
        if extra_contacts is not None and k in extra_contacts:
            jj, ii = extra_contacts[k]
            c[xp.asarray(jj), xp.asarray(ii)] = True
        if grow > 0 and bool(c.any()):
            c = dilate(ops, c, grow, p)
        contact_at[k] = c
    return contact_at


def _columns(
    grid: LayerGrid, s: PrintSettings, d_out: dict[int, Any], contact_at: dict[int, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Base area, interface area, base row chords (mm) and separate areas per layer
    (:func:`.masks.components`), from
    the contacts projected down (``support_contact_distance`` below them) to the plate or
    the part."""
    xp, ops = grid.xp, ops_for(grid.xp)
    nz, ny, nx = grid.shape
    h, p = grid.pitch_z, grid.pitch_xy
    gap = max(0, round(s.support_contact_distance_mm / h))
    xy_gap = s.support_xy_spacing_fraction * s.w_external_perimeter_mm
    n_if = s.support_interface_layers
    col = xp.zeros((ny + 2, nx + 2), dtype=bool)
    recent: list[Any] = []  # contact masks of the last n_if layers (for interfaces)
    a_base, a_if, runs_base = (np.zeros(nz) for _ in range(3))
    islands: dict[int, np.ndarray] = {}
    for k in range(nz - 1, -1, -1):
        c = contact_at.get(k + 1 + gap)
        if c is not None:
            col = col | c
        recent = [c, *recent][: max(1, n_if)]
        col = col & ~_solid(d_out[k], p)
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
            region = dilate(ops, region, s.support_first_layer_expansion_mm, p)
            region &= d_out[0] > xy_gap
        a_if[k] = float(iface.sum()) * p * p
        if bool(region.any()):
            lab, n = ops.label(region[None])
            islands.update(components(xp, Labels(lab, n, np.zeros(1, int)), k, p))
        base = region & ~iface
        a_base[k] = float(base.sum()) * p * p
        runs_base[k] = float(runs(base[None])[0]) * p
    return a_base, a_if, runs_base, islands


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
