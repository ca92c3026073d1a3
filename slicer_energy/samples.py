"""Generated sample parts: the study's phone case and the aircraft bracket pair.

All three are built with exact CSG (manifold3d), so they are watertight by
construction and their volume is known independently of any voxeliser.

* ``phone_case`` — a snap-on smartphone case, 72 × 150 × 9 mm outside, 1.4 mm side
  walls and a 1.4 mm back, rounded corners (r 9 mm), a 1.2 mm lip over the screen
  edge, a camera window and side button slots. About 16 cm³ (≈ 20 g of PLA).
* ``bracket`` — a conventional machined aluminium angle bracket: base plate
  160 × 100 × 14 mm with four Ø10.5 mm bolt holes, an upright lug 100 × 16 × 84 mm
  with a Ø20 mm load-pin eye, and two triangular gussets. ≈ 370 cm³ (≈ 1.0 kg at 2.7 g/cm³).
* ``bracket_bionic`` — the same interface (same bolt holes, same pin eye, same
  footprint and height) carried by a lattice of organic struts (hulls of spheres)
  from each bolt boss to the eye, sized so the volume is 60 % of ``bracket``
  (40 % lighter, ≈ 0.6 kg), like the study's topology-optimised variant.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import manifold3d as mf
import numpy as np

from .errors import MeshError, SlicerEnergyError

if TYPE_CHECKING:  # imported where a sample is built: predicting a file never needs it
    import trimesh

SAMPLES = ("phone_case", "bracket", "bracket_bionic")
_SEGMENTS = 64


def _to_trimesh(m: mf.Manifold) -> trimesh.Trimesh:
    import trimesh

    mesh = m.to_mesh()
    tm = trimesh.Trimesh(
        vertices=np.asarray(mesh.vert_properties)[:, :3],
        faces=np.asarray(mesh.tri_verts),
        process=True,
    )
    tm.apply_translation([0.0, 0.0, -tm.bounds[0][2]])
    return tm


def _rounded_box(x: float, y: float, z: float, r: float) -> mf.Manifold:
    """Box with vertical edges rounded to radius r, corner at the origin."""
    r = min(r, x / 2 - 1e-6, y / 2 - 1e-6)
    cs = mf.CrossSection.square([x - 2 * r, y - 2 * r]).translate([r, r])
    cs = cs.offset(r, mf.JoinType.Round, circular_segments=_SEGMENTS)
    return mf.Manifold.extrude(cs, z)


def phone_case() -> trimesh.Trimesh:
    """Snap-on smartphone case (see module docstring for dimensions)."""
    ox, oy, oz = 72.0, 150.0, 9.0
    wall, back, lip_h, lip_w, r = 1.4, 1.4, 1.2, 1.2, 9.0
    outer = _rounded_box(ox, oy, oz, r)
    # Soften the bottom outside edge with a 45° chamfer, as moulded cases have.
    cham = 1.0
    bottom = _rounded_box(ox - 2 * cham, oy - 2 * cham, cham, r - cham).translate([cham, cham, 0])
    body = (outer - mf.Manifold.cube([ox, oy, cham])) + mf.Manifold.hull(
        bottom + _rounded_box(ox, oy, 1e-3, r).translate([0, 0, cham])
    )
    # Phone pocket: full inner size below the lip, then the smaller screen opening.
    pocket = _rounded_box(ox - 2 * wall, oy - 2 * wall, oz - back - lip_h, r - wall)
    pocket = pocket.translate([wall, wall, back])
    opening = _rounded_box(ox - 2 * (wall + lip_w), oy - 2 * (wall + lip_w), lip_h + 1, r - 2.6)
    opening = opening.translate([wall + lip_w, wall + lip_w, oz - lip_h - 0.01])
    case = body - pocket - opening
    # Camera window in the back (top left seen from behind), rounded 24 × 26 mm.
    cam = _rounded_box(24.0, 26.0, back + 2, 6.0).translate([8.0, oy - 8.0 - 26.0, -1])
    # Volume and power button slots through the side walls.
    slot_vol = _rounded_box(wall + 2, 28.0, 3.2, 1.5).translate([-1, oy - 60.0, 3.6])
    slot_pow = _rounded_box(wall + 2, 16.0, 3.2, 1.5).translate([ox - wall - 1, oy - 52.0, 3.6])
    # USB and speaker opening at the bottom edge.
    usb = _rounded_box(30.0, wall + 2, 4.0, 2.0).translate([(ox - 30.0) / 2, -1, 3.0])
    case = case - cam - slot_vol - slot_pow - usb
    return _to_trimesh(case)


def _bolt_holes() -> list[tuple[float, float]]:
    return [(20.0, 20.0), (140.0, 20.0), (20.0, 80.0), (140.0, 80.0)]


_BASE = (160.0, 100.0, 16.0)
_LUG = dict(x0=30.0, width=100.0, y0=42.0, thick=16.0, height=62.0)
_EYE = dict(y=50.0, z=70.0, r=10.0)  # pin eye axis along y through the lug
_BOLT_R = 5.25


def _interface_cuts() -> mf.Manifold:
    holes = [
        mf.Manifold.cylinder(100, _BOLT_R, circular_segments=_SEGMENTS).translate([x, y, -50])
        for x, y in _bolt_holes()
    ]
    eye = mf.Manifold.cylinder(200, _EYE["r"], circular_segments=_SEGMENTS)
    eye = eye.rotate([90, 0, 0]).translate([80.0, 100.0 + 50, _EYE["z"]])
    return mf.Manifold.batch_boolean(holes + [eye], mf.OpType.Add)


def bracket() -> trimesh.Trimesh:
    """Conventional machined angle bracket (≈ 370 cm³)."""
    bx, by, bz = _BASE
    base = mf.Manifold.cube([bx, by, bz])
    lug = mf.Manifold.cube([_LUG["width"], _LUG["thick"], _LUG["height"]])
    lug = lug.translate([_LUG["x0"], _LUG["y0"], 0])
    # Rounded top of the lug: hull of its shoulders and a disc around the eye.
    disc = mf.Manifold.cylinder(_LUG["thick"], _EYE["r"] + 14.0, circular_segments=_SEGMENTS)
    disc = disc.rotate([-90, 0, 0]).translate([80.0, _LUG["y0"], _EYE["z"]])
    shoulders = mf.Manifold.cube([_LUG["width"], _LUG["thick"], 1.0]).translate(
        [_LUG["x0"], _LUG["y0"], _LUG["height"] - 1.0]
    )
    lug = lug + mf.Manifold.batch_hull([shoulders, disc])
    gussets = []
    for y0, y1 in ((0.0, _LUG["y0"]), (_LUG["y0"] + _LUG["thick"], by)):
        pts = []
        for x in (_LUG["x0"] + 44.0, _LUG["x0"] + 56.0):
            pts += [[x, y0 + 6, bz], [x, y1 - 6, bz]]
            near = y1 if y1 == _LUG["y0"] else y0
            pts += [[x, near, 56.0]]
        gussets.append(mf.Manifold.hull_points(pts))
    part = mf.Manifold.batch_boolean([base, lug, *gussets], mf.OpType.Add) - _interface_cuts()
    return _to_trimesh(part)


def _strut(p: tuple[float, float, float], q: tuple[float, float, float], r: float) -> mf.Manifold:
    a = mf.Manifold.sphere(r, 24).translate(list(p))
    b = mf.Manifold.sphere(r * 0.8, 24).translate(list(q))
    return mf.Manifold.batch_hull([a, b])


def _bionic(r: float) -> mf.Manifold:
    bx, by, bz = _BASE
    parts: list[mf.Manifold] = []
    # Bolt bosses: the interface that must stay (flat seat of 11 mm radius, 14 mm high).
    for x, y in _bolt_holes():
        parts.append(
            mf.Manifold.cylinder(bz, 11.0, circular_segments=_SEGMENTS).translate([x, y, 0])
        )
    # Eye boss: same pin eye and lug width as the conventional part.
    eye = mf.Manifold.cylinder(_LUG["thick"], 18.0, circular_segments=_SEGMENTS)
    parts.append(eye.rotate([-90, 0, 0]).translate([80.0, _LUG["y0"], _EYE["z"]]))
    eye_pts = [(66.0, 50.0, 62.0), (94.0, 50.0, 62.0), (80.0, 50.0, 54.0)]
    # Load paths: each bolt boss to the eye, a frame around the footprint, cross ties.
    for x, y in _bolt_holes():
        near = min(eye_pts, key=lambda e: (e[0] - x) ** 2 + (e[1] - y) ** 2)
        parts.append(_strut((x, y, bz * 0.5), near, r))
        parts.append(_strut((x, y, bz * 0.5), (80.0, 50.0, 30.0), r * 0.8))
    holes = _bolt_holes()
    for a, b in ((0, 1), (2, 3), (0, 2), (1, 3)):
        (xa, ya), (xb, yb) = holes[a], holes[b]
        parts.append(_strut((xa, ya, 5.0), (xb, yb, 5.0), r * 0.6))
    parts.append(_strut((80.0, 50.0, 30.0), (80.0, 50.0, 56.0), r))
    return mf.Manifold.batch_boolean(parts, mf.OpType.Add) - _interface_cuts()


def bracket_bionic() -> trimesh.Trimesh:
    """Topology-optimised-looking bracket with 60 % of ``bracket``'s volume (same interface)."""
    target = 0.6 * float(bracket().volume)
    lo, hi = 2.0, 20.0
    for _ in range(40):  # strut radius by bisection on the exact CSG volume
        mid = 0.5 * (lo + hi)
        if _bionic(mid).volume() < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-2:
            break
    return _to_trimesh(_bionic(0.5 * (lo + hi)))


_BUILDERS = {"phone_case": phone_case, "bracket": bracket, "bracket_bionic": bracket_bionic}


@functools.cache
def _cached(name: str) -> trimesh.Trimesh:
    return _BUILDERS[name]()


def sample_mesh(name: str) -> trimesh.Trimesh:
    """A fresh copy of a sample part (generated once per process)."""
    if name not in _BUILDERS:
        raise MeshError(f"unknown sample part {name!r}; samples are: {', '.join(SAMPLES)}")
    return _cached(name).copy()


def write_samples(out_dir: str | Path) -> list[Path]:
    """Write all sample parts as binary STL into ``out_dir``; return the paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SlicerEnergyError(f"{out}: exists and is not a folder; give a folder for the STLs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SlicerEnergyError(f"{out}: cannot create the folder: {exc.strerror}") from None
    paths = []
    for name in SAMPLES:
        p = out / f"{name}.stl"
        sample_mesh(name).export(p)
        paths.append(p)
    return paths


def resolve_part(arg: str, units: str = "mm"):
    """A ``LoadedMesh`` from a file path or a sample name (``phone_case``, ...)."""
    from .geometry import load_mesh, prepare_mesh

    if arg in _BUILDERS and not Path(arg).exists():
        return prepare_mesh(sample_mesh(arg), units="mm", where=f"sample {arg}", path=None)
    if not Path(arg).exists() and Path(arg).suffix == "":
        raise MeshError(f"{arg}: no such file, and not a sample part ({', '.join(SAMPLES)})")
    return load_mesh(arg, units=units)
