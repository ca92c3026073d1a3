"""Mesh loading: real corpus files, every failure mode with its message, units, repairs."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import trimesh

from slicer_energy.errors import MeshError
from slicer_energy.geometry import load_mesh
from slicer_energy.voxelize import voxelize

from conftest import CORPUS, need_shared

CORPUS_STL = sorted((CORPUS / "stl").glob("*.stl")) if (CORPUS / "stl").exists() else []


def write_box(path, fmt="stl", extents=(20.0, 10.0, 5.0), shift=(0.0, 0.0, 3.0)):
    box = trimesh.creation.box(extents)
    box.apply_translation(shift)
    box.export(path, file_type=fmt)
    return box


@pytest.mark.skipif(not CORPUS_STL, reason="../shared/corpus/stl not found")
@pytest.mark.parametrize("path", CORPUS_STL, ids=lambda p: p.name)
def test_corpus_part_loads_and_voxelises(path, record_property):
    part = load_mesh(path)
    assert part.mesh.is_watertight
    assert part.bounds[0][2] == pytest.approx(0.0, abs=1e-9)
    assert part.volume_mm3 > 0
    # About 20 M cells per part keeps the suite quick; thin shells need finer pitch.
    pitch = float(np.clip((np.prod(part.extents_mm) / 2e7) ** (1 / 3), 0.1, 0.5))
    grid = voxelize(part, pitch, pitch)
    err = (grid.volume_mm3() - part.volume_mm3) / part.volume_mm3
    record_property("volume_error", err)
    print(f"{path.name}: pitch {pitch:.3f} mm, volume error {err * 100:+.3f} %")
    assert abs(err) < 0.03


def test_corpus_inverted_normals_are_fixed_with_a_warning():
    path = need_shared("corpus", "stl", "vase_12across.stl")
    raw = trimesh.load(path, process=False)
    assert raw.volume < 0  # the file really is inside out
    part = load_mesh(path)
    assert part.volume_mm3 == pytest.approx(-raw.volume, rel=1e-9)
    assert any("inverted normals" in w for w in part.warnings)


@pytest.mark.parametrize("fmt", ["stl", "obj", "ply", "3mf"])
def test_formats_load_to_the_same_solid(tmp_path, fmt):
    p = tmp_path / f"box.{fmt}"
    write_box(p, fmt)
    part = load_mesh(p)
    assert part.volume_mm3 == pytest.approx(1000.0, rel=1e-6)
    assert part.bounds[0][2] == pytest.approx(0.0, abs=1e-9)


def test_ascii_stl(tmp_path):
    p = tmp_path / "ascii.stl"
    box = trimesh.creation.box((3.0, 4.0, 5.0))
    p.write_bytes(trimesh.exchange.stl.export_stl_ascii(box).encode())
    assert load_mesh(p).volume_mm3 == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("units", "factor"), [("mm", 1.0), ("cm", 10.0), ("m", 1000.0), ("in", 25.4)]
)
def test_units_scale_to_mm(tmp_path, units, factor):
    p = tmp_path / "box.stl"
    write_box(p, extents=(2.0, 3.0, 4.0))
    part = load_mesh(p, units=units)
    assert part.extents_mm == pytest.approx(np.array([2.0, 3.0, 4.0]) * factor)


def test_tiny_part_warns_about_units(tmp_path):
    p = tmp_path / "metres.stl"
    write_box(p, extents=(0.07, 0.15, 0.009))
    part = load_mesh(p)
    assert any("metres or inches" in w for w in part.warnings)
    assert not load_mesh(p, units="m").warnings


def test_several_bodies(tmp_path):
    a = trimesh.creation.box((5, 5, 5))
    b = trimesh.creation.icosphere(3, 2.0)
    b.apply_translation([20, 0, 0])
    p = tmp_path / "two.stl"
    trimesh.util.concatenate([a, b]).export(p)
    part = load_mesh(p)
    assert part.bodies == 2
    assert part.volume_mm3 == pytest.approx(a.volume + b.volume, rel=1e-6)  # float32 STL


def test_small_hole_is_repaired(tmp_path):
    box = trimesh.creation.box((10, 10, 10)).subdivide()
    box.update_faces(np.arange(len(box.faces)) != 0)  # drop one triangle
    p = tmp_path / "hole.stl"
    box.export(p)
    part = load_mesh(p)
    assert part.mesh.is_watertight
    assert part.volume_mm3 == pytest.approx(1000.0, rel=1e-6)
    assert any("filled holes" in w for w in part.warnings)


def test_open_surface_is_refused(tmp_path):
    # A box without its top and one side: inside and outside are undefined.
    box = trimesh.creation.box((10, 10, 10)).subdivide().subdivide()
    centres = box.triangles_center
    keep = (centres[:, 2] < 4.9) & (centres[:, 0] > -4.9)
    box.update_faces(keep)
    p = tmp_path / "open.stl"
    box.export(p)
    with pytest.raises(MeshError, match=r"open.stl: not a closed solid: \d+ of \d+ edges"):
        load_mesh(p)


def test_inverted_normals_fixed(tmp_path):
    box = trimesh.creation.box((10, 10, 10))
    box.invert()
    p = tmp_path / "inv.stl"
    box.export(p)
    part = load_mesh(p)
    assert part.volume_mm3 == pytest.approx(1000.0)
    assert any("inverted normals fixed" in w for w in part.warnings)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.stl"
    p.write_bytes(b"")
    with pytest.raises(MeshError, match="empty.stl: empty file"):
        load_mesh(p)


def test_missing_file(tmp_path):
    with pytest.raises(MeshError, match="no such file"):
        load_mesh(tmp_path / "nope.stl")


def test_truncated_binary_stl(tmp_path):
    src = tmp_path / "box.stl"
    write_box(src)
    data = src.read_bytes()
    p = tmp_path / "cut.stl"
    p.write_bytes(data[: len(data) - 70])
    with pytest.raises(MeshError, match=r"cut.stl: truncated binary STL: header says 12 triangles"):
        load_mesh(p)


def test_header_claiming_2_31_triangles(tmp_path):
    p = tmp_path / "huge.stl"
    p.write_bytes(b"\0" * 80 + struct.pack("<I", 2**31) + b"\0" * 100)
    with pytest.raises(MeshError, match="header says 2147483648 triangles"):
        load_mesh(p)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("junk.stl", np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
         "junk.stl"),
        ("junk.obj", b"this is not\na mesh at all\n", "junk.obj"),
        ("part.step", b"ISO-10303-21;", "unsupported format 'step'"),
    ],
)  # fmt: skip
def test_garbage_is_refused_naming_the_file(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(MeshError, match=message):
        load_mesh(p)


def test_nan_vertices(tmp_path):
    p = tmp_path / "nan.stl"
    box = trimesh.creation.box((1, 1, 1))
    text = trimesh.exchange.stl.export_stl_ascii(box)
    lines = text.splitlines()
    idx = next(i for i, line in enumerate(lines) if line.strip().startswith("vertex"))
    lines[idx] = "      vertex nan 0.5 0.5"
    p.write_text("\n".join(lines))
    with pytest.raises(MeshError, match="nan.stl: 1 vertices have NaN or infinite"):
        load_mesh(p)


def test_zero_volume(tmp_path):
    p = tmp_path / "flat.stl"
    tri = trimesh.Trimesh(
        [[0, 0, 0], [10, 0, 0], [0, 10, 0], [10, 10, 0]],
        [[0, 1, 2], [1, 3, 2], [2, 1, 0], [2, 3, 1]],
        process=False,
    )
    tri.export(p)
    with pytest.raises(MeshError, match="flat.stl: .*(zero volume|degenerate|not a closed)"):
        load_mesh(p)
