"""Solid voxelisation of a closed triangle mesh into print layers (one code path, NumPy or CuPy).

Scatter-and-prefix-sum (DESIGN.md): sample the solid at cell centres. For every
triangle, a scanline pass finds the xy columns whose centre its projection
covers; at each such column it scatters +1 (surface facing down: the column
enters the solid) or −1 (facing up: it leaves) at the first layer whose centre
lies above the crossing. A cumulative sum along z then gives each cell's
winding number; a cell is solid where it is non-zero. No sorting, no ray
casting, robust to overlapping shells.

Tie rules make a sample that lies exactly on a shared edge, vertex or face
count once: rows use the half-open rule ``y_lo <= y < y_hi`` per edge, columns
``x_left <= x < x_right``, layers ``z_crossing < z_centre``; both triangles of a
shared edge compute its crossing from the same canonically ordered endpoints,
so they agree bit for bit.

Memory is bounded: z is processed in slabs sized from ``memory_budget_mb``;
triangles in chunks. Only the output grid (1 byte per cell) is held whole, and its size
is checked against the memory budget before it is allocated (:func:`check_grid`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .backend import backend_name, get_xp, to_numpy
from .errors import MeshError, SettingsError
from .memory import fmt_bytes, memory_budget

# Work arrays per scattered sample: ~10 float64/int64 temporaries.
_BYTES_PER_SAMPLE = 96
# Slab accumulator: int16 (NumPy) or int32 (CuPy) signed crossing counts per cell.
_BYTES_PER_SLAB_CELL = 4


@dataclass
class LayerGrid:
    """Occupancy of a part on an anisotropic grid: ``occupancy[k, j, i]`` (layer, row, column).

    Cell (k, j, i) spans ``origin + (i, j, k) * (pitch_xy, pitch_xy, pitch_z)`` to the next
    corner; it is solid when its centre is inside the mesh. With ``origin[2] = 0`` and
    ``pitch_z`` = layer height, layer k is the k-th printed layer.
    """

    occupancy: Any  # bool array [nz, ny, nx], NumPy or CuPy
    origin: tuple[float, float, float]
    pitch_xy: float
    pitch_z: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.occupancy.shape)  # type: ignore[return-value]

    @property
    def xp(self) -> ModuleType:
        from .backend import array_module

        return array_module(self.occupancy)

    @property
    def cell_volume_mm3(self) -> float:
        return self.pitch_xy * self.pitch_xy * self.pitch_z

    @property
    def cell_area_mm2(self) -> float:
        return self.pitch_xy * self.pitch_xy

    def voxel_count(self) -> int:
        return int(self.occupancy.sum())

    def volume_mm3(self) -> float:
        return self.voxel_count() * self.cell_volume_mm3

    def area_per_layer_mm2(self) -> np.ndarray:
        """Solid cross-section area of each layer (NumPy array, length nz)."""
        return to_numpy(self.occupancy.sum(axis=(1, 2))) * self.cell_area_mm2

    def layer_z_mm(self) -> np.ndarray:
        """Height of each layer's sampling plane (cell centre)."""
        return self.origin[2] + (np.arange(self.shape[0]) + 0.5) * self.pitch_z

    def layer_top_mm(self) -> np.ndarray:
        """Top of each layer (where a slicer reports the layer's z)."""
        return self.origin[2] + (np.arange(self.shape[0]) + 1.0) * self.pitch_z

    def to_numpy(self) -> LayerGrid:
        return LayerGrid(
            to_numpy(self.occupancy), self.origin, self.pitch_xy, self.pitch_z, dict(self.info)
        )


def _as_triangles(mesh: Any) -> np.ndarray:
    """(n, 3, 3) float64 triangles from a Trimesh, a LoadedMesh or an array."""
    if hasattr(mesh, "mesh"):  # geometry.LoadedMesh
        mesh = mesh.mesh
    if hasattr(mesh, "triangles"):
        tris = mesh.triangles
    else:
        tris = mesh
    tris = np.asarray(tris, dtype=np.float64)
    if tris.ndim != 3 or tris.shape[1:] != (3, 3):
        raise ValueError(f"triangles must have shape (n, 3, 3), got {tris.shape}")
    if not np.isfinite(tris).all():
        raise ValueError("triangles contain NaN or infinite coordinates")
    return tris


def grid_for(
    bounds: np.ndarray, pitch_xy: float, pitch_z: float, z0: float | None = None
) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    """Origin and shape of a grid whose cells start at the mesh's minimum corner.

    ``z0`` defaults to the mesh's lowest point (0 for a part on the plate), so layer k
    is the k-th printed layer.
    """
    lo, hi = np.asarray(bounds, dtype=np.float64)
    origin = (float(lo[0]), float(lo[1]), float(lo[2] if z0 is None else z0))
    ext = hi - np.array(origin)
    shape = (
        max(1, math.ceil(ext[2] / pitch_z - 1e-9)),
        max(1, math.ceil(ext[1] / pitch_xy - 1e-9)),
        max(1, math.ceil(ext[0] / pitch_xy - 1e-9)),
    )
    return origin, shape


@dataclass(frozen=True)
class GridCost:
    """Peak memory of a computation on a grid of ``cells`` cells (:meth:`bytes`).

    ``per_cell`` bytes for arrays the size of the grid, plus working memory of
    ``work_per_cell`` bytes per cell up to ``work_cap`` (slabs), plus ``fixed``. Measured
    with ``tracemalloc`` on the sample parts, rounded up.
    """

    per_cell: float
    work_per_cell: float = 0.0
    work_cap: float = 0.0
    fixed: float = 16 * 2**20

    def bytes(self, cells: float) -> float:
        return self.per_cell * cells + min(self.work_cap, self.work_per_cell * cells) + self.fixed


VOXELIZE_COST = GridCost(2.5)  # output grid + slab accumulator of the same size
# A part spanning fewer cells than this in x and y has no meaningful layer profile.
MIN_CELLS_ACROSS = 3


def check_grid(
    shape: tuple[int, int, int],
    pitch_xy: float,
    pitch_z: float,
    extents_mm: Any,
    cost: GridCost = VOXELIZE_COST,
    max_memory_gb: float | None = None,
) -> None:
    """Refuse, before anything is allocated, a grid too coarse to see the part or too big
    for the memory budget (:func:`slicer_energy.memory.memory_budget`).

    The size error gives the grid's cells and bytes and the finest xy pitch that fits at
    this layer height; the too-small error suggests the file's units.
    """
    nz, ny, nx = (int(v) for v in shape)
    ex, ey, ez = (float(v) for v in extents_mm)
    if max(nx, ny) < MIN_CELLS_ACROSS:
        raise MeshError(
            f"part is only {ex:.3g} x {ey:.3g} x {ez:.3g} mm, {nx} x {ny} cells of "
            f"{pitch_xy:g} mm: too small to estimate; if the file is in metres, cm or inches, "
            "say so with --units m|cm|in"
        )
    cells = nz * ny * nx
    need = cost.bytes(cells)
    budget, why = memory_budget(max_memory_gb)
    if need <= budget:
        return
    # The largest grid within the budget (bytes(cells) is increasing: bisect).
    lo, hi = 0.0, float(cells)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost.bytes(mid) <= budget else (lo, mid)
    max_cells = lo
    if nz >= max_cells:
        fit = f"no xy pitch fits {nz:,} layers of {pitch_z:g} mm: use thicker layers"
    else:
        p = math.sqrt(ex * ey * nz / max_cells)
        step = 10.0 ** (math.floor(math.log10(p)) - 1)  # two significant digits, rounded up
        p = math.ceil(p / step) * step
        while math.ceil(ex / p) * math.ceil(ey / p) * nz > max_cells:
            p += step
        fit = f"the finest xy pitch that fits is {p:.2g} mm"
    raise SettingsError(
        f"a grid of {nz:,} x {ny:,} x {nx:,} = {cells:.3g} cells ({pitch_xy:g} mm pitch, "
        f"{pitch_z:g} mm layers) needs about {fmt_bytes(need)}, above the "
        f"{fmt_bytes(budget)} budget ({why}); {fit}, or raise the budget with "
        "--max-memory GB"
    )


def _ragged(xp: ModuleType, counts: Any) -> tuple[Any, Any]:
    """For counts c_t, return (owner t, rank 0..c_t-1) of every element of the ragged expansion.

    Built from a prefix sum and a binary search (no ``repeat`` with array counts, which
    CuPy does not support), so it runs unchanged on both backends.
    """
    ends = xp.cumsum(counts)
    total = int(ends[-1]) if counts.shape[0] else 0
    element = xp.arange(total)
    owner = xp.searchsorted(ends, element, side="right")
    rank = element - (ends[owner] - counts[owner])
    return owner, rank


def voxelize(
    mesh: Any,
    pitch_xy: float = 0.1,
    pitch_z: float = 0.2,
    *,
    origin: tuple[float, float, float] | None = None,
    shape: tuple[int, int, int] | None = None,
    xp: ModuleType | str | None = None,
    memory_budget_mb: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cost: GridCost = VOXELIZE_COST,
    max_memory_gb: float | None = None,
) -> LayerGrid:
    """Solid voxel grid of a closed mesh.

    Parameters
    ----------
    mesh : Trimesh, LoadedMesh or (n, 3, 3) float
        Closed, consistently oriented surface (outward normals), in mm.
    pitch_xy, pitch_z : float
        Cell size in x/y and in z (the layer height), mm.
    origin, shape : optional
        Grid corner (x0, y0, z0) and (nz, ny, nx); default: the mesh's bounding box.
    xp : module or "numpy"/"cupy"/"auto"
        Array backend; default from ``SLICER_ENERGY_BACKEND``.
    memory_budget_mb : float, optional
        Working memory on top of the output grid and the triangles; default: the size of
        the output grid (at least 16 MB).
    progress : callable(done_slabs, total_slabs), optional
    cost, max_memory_gb
        Peak memory per cell of what the caller does with the grid, and the budget
        (default: half the available memory); checked by :func:`check_grid` first.

    Returns
    -------
    LayerGrid
        ``occupancy`` on the chosen backend; ``info`` has timing, slab and sample counts.
    """
    t_start = time.perf_counter()
    if not (pitch_xy > 0 and pitch_z > 0):
        raise ValueError(f"pitches must be positive, got pitch_xy={pitch_xy}, pitch_z={pitch_z}")
    if xp is None or isinstance(xp, str):
        xp = get_xp(xp)
    tri_xyz, lo, hi = _triangle_boxes(_as_triangles(mesh))
    bounds = np.array([[m.min() for m in lo], [m.max() for m in hi]])
    if origin is None or shape is None:
        o, s = grid_for(bounds, pitch_xy, pitch_z)
        origin = origin or o
        shape = shape or s
    nz, ny, nx = (int(v) for v in shape)
    if min(nz, ny, nx) < 1:
        raise ValueError(f"grid shape must be positive, got {shape}")
    check_grid((nz, ny, nx), pitch_xy, pitch_z, bounds[1] - bounds[0], cost, max_memory_gb)
    x0, y0, z0 = (float(v) for v in origin)

    out = xp.zeros((nz, ny, nx), dtype=xp.bool_)
    info: dict[str, Any] = {"backend": backend_name(xp), "triangles": int(tri_xyz.shape[0])}
    # Cell-centre coordinates, computed once so every comparison uses the same floats.
    centres = (
        x0 + (np.arange(nx) + 0.5) * pitch_xy,
        y0 + (np.arange(ny) + 0.5) * pitch_xy,
        z0 + (np.arange(nz) + 0.5) * pitch_z,
    )
    # Slab size from the budget. CuPy's add.at has no int16 atomics: int32 there.
    acc_dtype = xp.int16 if info["backend"] == "numpy" else xp.int32
    out_bytes = nz * ny * nx
    budget = (memory_budget_mb * 2**20) if memory_budget_mb else max(16 * 2**20, out_bytes)
    slab_layers = int(max(1, min(nz, (budget / 2) // (_BYTES_PER_SLAB_CELL * ny * nx))))
    max_samples = int(max(1 << 15, (budget / 2) // _BYTES_PER_SAMPLE))
    info.update(slab_layers=slab_layers, slabs=math.ceil(nz / slab_layers))
    info["samples"] = _fill_slabs(
        xp, out, tri_xyz, lo, hi, centres, slab_layers, max_samples, acc_dtype, progress
    )
    if info["backend"] == "cupy":
        xp.cuda.Stream.null.synchronize()
    info["seconds"] = time.perf_counter() - t_start
    return LayerGrid(out, (x0, y0, z0), float(pitch_xy), float(pitch_z), info)


def _triangle_boxes(tris: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles as (n, 3 coordinates, 3 vertices) (``tri_xyz[:, c]`` holds coordinate c of
    each vertex) and each triangle's minimum and maximum (``lo[c]``, ``hi[c]``)."""
    tri_xyz = np.ascontiguousarray(tris.transpose(0, 2, 1))
    v0, v1, v2 = tri_xyz[:, :, 0], tri_xyz[:, :, 1], tri_xyz[:, :, 2]
    lo3, hi3 = np.minimum(np.minimum(v0, v1), v2), np.maximum(np.maximum(v0, v1), v2)
    return tri_xyz, lo3.T, hi3.T


def _fill_slabs(
    xp: ModuleType,
    out: Any,
    tri_xyz: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    centres_np: tuple[np.ndarray, np.ndarray, np.ndarray],
    slab_layers: int,
    max_samples: int,
    acc_dtype: Any,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Fill ``out`` slab by slab: scatter the crossings, then the running winding number
    along z says which cells are solid. Returns the number of samples scattered."""
    nz, ny, nx = (int(v) for v in out.shape)
    _, yc_np, zc_np = centres_np
    centres = tuple(xp.asarray(c) for c in centres_np)
    # Rows each triangle's projection can cover (half-open: y_lo <= yc < y_hi); host side,
    # so that chunks can be sized before any device work.
    row_lo = np.searchsorted(yc_np, lo[1], side="left")
    rows = np.searchsorted(yc_np, hi[1], side="left") - row_lo
    # Running winding number of each column below the current layer.
    running = xp.zeros((ny, nx), dtype=acc_dtype)
    samples_total = 0
    n_slabs = math.ceil(nz / slab_layers)
    for s in range(n_slabs):
        k0, k1 = s * slab_layers, min(nz, (s + 1) * slab_layers)
        # A crossing lands in layer k iff zc[k-1] <= z < zc[k]; select triangles that can.
        z_lo = -np.inf if k0 == 0 else zc_np[k0 - 1]
        sel = np.nonzero((hi[2] >= z_lo) & (lo[2] < zc_np[k1 - 1]) & (rows > 0))[0]
        if sel.size:
            acc = xp.zeros((k1 - k0) * ny * nx, dtype=acc_dtype)
            samples_total += _scatter_slab(
                xp, acc, tri_xyz, sel, row_lo, rows, (k0, k1, ny, nx), centres, max_samples
            )
            acc = acc.reshape(k1 - k0, ny, nx)
            # Prefix sum along z, one layer at a time: contiguous adds, no int64 temporaries.
            for k in range(k0, k1):
                running += acc[k - k0]
                xp.not_equal(running, 0, out=out[k])
            del acc
        else:
            out[k0:k1] = (running != 0)[None]
        if progress:
            progress(s + 1, n_slabs)
    return samples_total


def _scatter_slab(
    xp: ModuleType,
    acc: Any,
    tri_xyz: np.ndarray,
    sel: np.ndarray,
    row_lo: np.ndarray,
    rows: np.ndarray,
    slab: tuple[int, int, int, int],
    centres: tuple[Any, Any, Any],
    max_samples: int,
) -> int:
    """Add the signed crossings of triangles ``sel`` in layers [k0, k1) into ``acc``.

    Triangles go in chunks bounded by their (triangle, row) pair count, pairs in
    sub-chunks bounded by their sample count, so work memory stays within the budget.
    """
    cum = np.cumsum(rows[sel])
    pair_cap = max(1, max_samples // 4)
    n_samples, start = 0, 0
    while start < sel.size:
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + pair_cap, side="right")), start + 1)
        chunk = sel[start:stop]
        n_samples += _scatter_chunk(
            xp,
            acc,
            xp.asarray(tri_xyz[chunk]),
            xp.asarray(row_lo[chunk]),
            xp.asarray(rows[chunk]),
            slab,
            centres,
            max_samples,
        )
        start = stop
    return n_samples


def _scatter_chunk(
    xp: ModuleType,
    acc: Any,
    t: Any,
    row_lo: Any,
    rows: Any,
    slab: tuple[int, int, int, int],
    centres: tuple[Any, Any, Any],
    max_samples: int,
) -> int:
    """Scanline one chunk of triangles ``t`` (m, 3 coords, 3 vertices) on the device."""
    plane, rows = _planes(xp, t, rows, acc.dtype)
    # (triangle, row) pairs.
    owner, rank = _ragged(xp, rows)
    j = row_lo[owner] + rank
    col_lo, cols = _row_spans(xp, t, owner, centres[0], centres[1][j])
    return _scatter_samples(xp, acc, plane, owner, j, col_lo, cols, slab, centres, max_samples)


def _planes(xp: ModuleType, t: Any, rows: Any, acc_dtype: Any) -> tuple[tuple[Any, ...], Any]:
    """Each triangle's sign (+1 where its normal points down: the column enters the solid)
    and plane z = p0 + px*x + py*y; vertical faces cover no column centre (rows set to 0)."""
    x, y, z = t[:, 0], t[:, 1], t[:, 2]  # (m, 3) each
    # Projected doubled signed area: its sign is the normal's z (down = entering the solid).
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    flat_tri = area2 == 0
    sign = xp.where(area2 < 0, 1, -1).astype(acc_dtype)
    # Plane from the normal n = (b - a) x (c - a), n_z = area2.
    ux, uy, uz = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0], z[:, 1] - z[:, 0]
    vx, vy, vz = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0], z[:, 2] - z[:, 0]
    safe = xp.where(flat_tri, 1.0, area2)
    px = -(uy * vz - uz * vy) / safe
    py = -(uz * vx - ux * vz) / safe
    p0 = z[:, 0] - px * x[:, 0] - py * y[:, 0]
    return (sign, p0, px, py), xp.where(flat_tri, 0, rows)


def _row_spans(xp: ModuleType, t: Any, owner: Any, xc: Any, yr: Any) -> tuple[Any, Any]:
    """First column and number of columns whose centre each (triangle, row) pair covers
    (half-open: x_left <= xc < x_right); ``yr`` is each pair's row centre."""
    x, y = t[:, 0], t[:, 1]
    # Each edge's x at this row, from endpoints ordered by (y, x) so that both triangles
    # of a shared edge compute the same float; active when lo_y <= y < hi_y.
    xl = xp.full(yr.shape, xp.inf)
    xr = xp.full(yr.shape, -xp.inf)
    n_active = xp.zeros(yr.shape, dtype=xp.int8)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        xa, ya, xb, yb = x[:, a], y[:, a], x[:, b], y[:, b]
        swap = (ya > yb) | ((ya == yb) & (xa > xb))
        lx, ly = xp.where(swap, xb, xa)[owner], xp.where(swap, yb, ya)[owner]
        hx, hy = xp.where(swap, xa, xb)[owner], xp.where(swap, ya, yb)[owner]
        active = (ly <= yr) & (yr < hy)
        xe = lx + (yr - ly) * (hx - lx) / xp.where(active, hy - ly, 1.0)
        xl = xp.where(active, xp.minimum(xl, xe), xl)
        xr = xp.where(active, xp.maximum(xr, xe), xr)
        n_active += active
    col_lo = xp.searchsorted(xc, xl, side="left")
    cols = xp.where(n_active == 2, xp.searchsorted(xc, xr, side="left") - col_lo, 0)
    return col_lo, cols


def _scatter_samples(
    xp: ModuleType,
    acc: Any,
    plane: tuple[Any, ...],
    owner: Any,
    j: Any,
    col_lo: Any,
    cols: Any,
    slab: tuple[int, int, int, int],
    centres: tuple[Any, Any, Any],
    max_samples: int,
) -> int:
    """Add each covered column centre's signed crossing at the first layer above it into
    ``acc`` (pairs in sub-chunks of at most ``max_samples`` samples); returns the count."""
    k0, k1, ny, nx = slab
    xc, yc, zc = centres
    sign, p0, px, py = plane
    cum = to_numpy(xp.cumsum(cols))
    total = int(cum[-1]) if cum.size else 0
    start, n_pairs = 0, int(cols.shape[0])
    while start < n_pairs and total:
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + max_samples, side="right")), start + 1)
        c = cols[start:stop]
        if int(c.sum()):
            sub_owner, sub_rank = _ragged(xp, c)
            pair = start + sub_owner
            i = col_lo[pair] + sub_rank
            jj = j[pair]
            tt = owner[pair]
            zs = p0[tt] + px[tt] * xc[i] + py[tt] * yc[jj]
            k = xp.searchsorted(zc, zs, side="right")  # first layer whose centre is above
            inside = (k >= k0) & (k < k1)
            flat = ((k - k0) * ny + jj) * nx + i
            xp.add.at(acc, flat[inside], sign[tt][inside])
        start = stop
    return total
