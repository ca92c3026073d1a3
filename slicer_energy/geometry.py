"""Loading part meshes: STL (ASCII/binary), 3MF, OBJ, PLY, checked and placed on the plate.

Everything downstream assumes a mesh in millimetres, with its lowest point at
z = 0, finite coordinates, a positive enclosed volume and outward normals.
:func:`load_mesh` establishes that or raises :class:`MeshError` naming the file
and the problem; fixable problems (inverted normals, small holes) are fixed and
reported in ``LoadedMesh.warnings``.

STL and core 3MF are read and checked in NumPy (:mod:`.mesh`); trimesh (about 0.6 s to
import) is loaded only for OBJ/PLY, 3MF extensions and repairs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import MeshError
from .mesh import Mesh, Unsupported, read_3mf, read_stl

if TYPE_CHECKING:
    import trimesh

log = logging.getLogger(__name__)

UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
FORMATS = ("stl", "3mf", "obj", "ply")
_STL_HEADER = np.dtype([("header", "S80"), ("count", "<u4")])
_STL_RECORD_BYTES = 50  # 12 float32 + uint16 attribute
# Above this share of open edges after repair the enclosed solid is not defined.
MAX_OPEN_EDGE_SHARE = 0.01


@dataclass
class LoadedMesh:
    """A checked mesh in millimetres on the build plate, with what was done to get there."""

    mesh: Mesh
    path: Path | None
    units: str = "mm"
    warnings: list[str] = field(default_factory=list)
    bodies: int = 1
    open_edges: int = 0

    @property
    def volume_mm3(self) -> float:
        """Exact enclosed volume (divergence theorem over the triangles)."""
        return float(self.mesh.volume)

    @property
    def bounds(self) -> np.ndarray:
        return np.asarray(self.mesh.bounds)

    @property
    def extents_mm(self) -> np.ndarray:
        return np.asarray(self.mesh.extents)

    @property
    def name(self) -> str:
        return self.path.stem if self.path else "mesh"


def _check_stl_bytes(path: Path, size: int) -> None:
    """Reject a binary STL whose triangle count disagrees with its length, before parsing."""
    with open(path, "rb") as fh:
        head = fh.read(_STL_HEADER.itemsize)
    if len(head) < _STL_HEADER.itemsize:
        if not head.lstrip().lower().startswith(b"solid"):
            raise MeshError(f"{path}: too short for an STL file ({size} bytes)")
        return
    count = int(np.frombuffer(head, dtype=_STL_HEADER)["count"][0])
    expected = _STL_HEADER.itemsize + _STL_RECORD_BYTES * count
    if size == expected:
        return  # binary, consistent (even if the header starts with "solid")
    if head.lstrip().lower().startswith(b"solid"):
        with open(path, "rb") as fh:
            sample = fh.read(4096)
        if b"facet" in sample or b"endsolid" in sample or size < 4096:
            return  # ASCII STL
    if size < expected:
        raise MeshError(
            f"{path}: truncated binary STL: header says {count} triangles "
            f"({expected} bytes) but the file has {size} bytes"
        )
    raise MeshError(
        f"{path}: not a valid STL: binary header says {count} triangles ({expected} bytes), "
        f"file has {size} bytes, and it is not ASCII STL"
    )


def _read_trimesh(path: Path, file_type: str) -> Mesh:
    import trimesh

    try:
        loaded = trimesh.load(str(path), file_type=file_type, force="mesh", process=False)
    except MeshError:
        raise
    except Exception as exc:  # trimesh raises many types on garbage input
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeshError(f"{path}: cannot read as {file_type.upper()}: {msg}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshError(f"{path}: no triangles found in the {file_type.upper()} file")
    return Mesh.from_trimesh(loaded)


def _read(path: Path, file_type: str) -> Mesh:
    """STL and core 3MF in NumPy; anything else (or anything odd) through trimesh."""
    reader = {"stl": read_stl, "3mf": read_3mf}.get(file_type)
    if reader is None:
        return _read_trimesh(path, file_type)
    try:
        mesh = reader(path)
    except Unsupported:
        return _read_trimesh(path, file_type)
    if len(mesh.faces) == 0:
        raise MeshError(f"{path}: no triangles found in the {file_type.upper()} file")
    return mesh


def _repair(mesh: Mesh, how: str) -> None:
    """Fill holes or fix winding with trimesh (imported only when a file needs it)."""
    import trimesh

    tm = mesh.to_trimesh()
    getattr(trimesh.repair, how)(tm)
    mesh.replace(tm.vertices, tm.faces)


def check_mesh(mesh: Mesh, where: str, warnings: list[str]) -> tuple[int, int]:
    """Repair what can be repaired in place; return (bodies, open edges) or raise MeshError."""
    v = np.asarray(mesh.vertices)
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        faces_bad = np.nonzero(bad[mesh.faces].any(axis=1))[0]
        raise MeshError(
            f"{where}: {int(bad.sum())} vertices have NaN or infinite coordinates "
            f"(first bad face: {int(faces_bad[0]) if faces_bad.size else '?'})"
        )
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        raise MeshError(f"{where}: all triangles are degenerate (zero area)")

    open_edges = mesh.open_edge_count()
    if open_edges:
        _repair(mesh, "fill_holes")
        after = mesh.open_edge_count()
        if after:
            warnings.append(
                f"mesh is not watertight: {after} open edges remain after repair "
                f"({open_edges} before)"
            )
        else:
            warnings.append(f"filled holes: {open_edges} open edges closed")
        open_edges = after
    if open_edges > MAX_OPEN_EDGE_SHARE * max(1, len(mesh.edges_unique)):
        raise MeshError(
            f"{where}: not a closed solid: {open_edges} of {len(mesh.edges_unique)} edges are "
            "open after repair, so inside and outside are undefined; close the mesh in a "
            "repair tool (e.g. PrusaSlicer's or Meshmixer's) first"
        )
    if not mesh.is_winding_consistent:
        _repair(mesh, "fix_winding")
        warnings.append("fixed inconsistent triangle winding")

    bodies = mesh.body_count
    volume = float(mesh.volume)
    scale = float(max(mesh.extents.max(), 1e-12))
    if not np.isfinite(volume) or abs(volume) <= 1e-9 * scale**3:
        raise MeshError(f"{where}: encloses zero volume (flat or degenerate surface)")
    if volume < 0:
        mesh.invert()
        warnings.append(
            f"inverted normals fixed (signed volume was {volume:.1f} mm³, now {-volume:.1f} mm³)"
        )
    return bodies, open_edges


def load_mesh(
    path: str | os.PathLike, units: str = "mm", file_type: str | None = None
) -> LoadedMesh:
    """Load, check and place a part on the build plate (min z = 0), in millimetres.

    Parameters
    ----------
    path : file path (STL, 3MF, OBJ, PLY; by extension unless ``file_type`` is given)
    units : the file's length unit: ``mm`` (default), ``cm``, ``m`` or ``in``

    Raises
    ------
    MeshError : the file is unreadable, empty, truncated, has NaN/inf coordinates,
        encloses no volume, or is so open that its solid is undefined.
    """
    path = Path(path)
    if units not in UNITS_TO_MM:
        raise MeshError(f"unknown unit {units!r}; choose one of {', '.join(UNITS_TO_MM)}")
    if not path.exists():
        raise MeshError(f"{path}: no such file")
    if path.is_dir():
        raise MeshError(f"{path}: is a directory, expected a mesh file")
    size = path.stat().st_size
    if size == 0:
        raise MeshError(f"{path}: empty file")
    ftype = (file_type or path.suffix.lstrip(".")).lower()
    if ftype not in FORMATS:
        raise MeshError(f"{path}: unsupported format {ftype!r}; expected one of {FORMATS}")
    if ftype == "stl":
        _check_stl_bytes(path, size)
    mesh = _read(path, ftype)
    return prepare_mesh(mesh, units=units, where=str(path), path=path)


def prepare_mesh(
    mesh: Mesh | trimesh.Trimesh,
    units: str = "mm",
    where: str = "mesh",
    path: Path | None = None,
) -> LoadedMesh:
    """Check, repair, scale to mm and place on the plate an in-memory mesh (light or trimesh)."""
    warnings: list[str] = []
    mesh = mesh.copy() if isinstance(mesh, Mesh) else Mesh.from_trimesh(mesh)
    bodies, open_edges = check_mesh(mesh, where, warnings)
    factor = UNITS_TO_MM[units]
    if factor != 1.0:
        mesh.apply_scale(factor)
    ext = float(mesh.extents.max())
    if ext < 2.0:
        warnings.append(
            f"part is only {ext:.3g} mm across: is the file in metres or inches? "
            "(use --units m|cm|in)"
        )
    elif ext > 3000.0:
        warnings.append(
            f"part is {ext / 1000:.3g} m across: is the file in micrometres or another unit "
            f"than {units}?"
        )
    mesh.apply_translation([0.0, 0.0, -float(mesh.bounds[0][2])])
    for w in warnings:
        log.warning("%s: %s", where, w)
    return LoadedMesh(mesh, path, units, warnings, bodies, open_edges)
