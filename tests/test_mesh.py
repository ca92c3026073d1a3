"""The NumPy mesh and its STL/3MF readers (slicer_energy.mesh) against trimesh's own loaders
and checks, on corpus files and on a 3MF written by the real PrusaSlicer CLI; the skirt's hull
perimeter against exact perimeters."""

from __future__ import annotations

import math
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
import trimesh

from slicer_energy.fdm.features import hull_perimeter
from slicer_energy.geometry import load_mesh
from slicer_energy.mesh import Mesh, read_3mf, read_stl, vertex_components

from conftest import CORPUS, need_shared

CORPUS_STL = sorted((CORPUS / "stl").glob("*.stl")) if (CORPUS / "stl").exists() else []


def _canonical(tri: np.ndarray) -> list[tuple[float, ...]]:
    """Triangles as sorted rows, each rotated to start at its smallest vertex (the winding is
    kept), so two meshes compare equal up to face and vertex order."""
    rows = []
    for t in np.asarray(tri, dtype=float).tolist():
        k = t.index(min(t))
        rows.append(tuple(x for v in t[k:] + t[:k] for x in v))
    return sorted(rows)


def _same_solid(light: Mesh, ref: trimesh.Trimesh) -> None:
    assert len(light.faces) == len(ref.faces)
    assert _canonical(light.triangles) == _canonical(ref.triangles)
    assert light.volume == pytest.approx(float(ref.volume), rel=1e-12)


@pytest.mark.skipif(not CORPUS_STL, reason="../shared/corpus/stl not found")
@pytest.mark.parametrize("path", CORPUS_STL, ids=lambda p: p.name)
def test_binary_stl_reads_as_trimesh_reads_it(path):
    _same_solid(read_stl(path), trimesh.load(path, force="mesh", process=False))


def test_ascii_stl_reads_as_trimesh_reads_it(tmp_path):
    src = trimesh.load(need_shared("corpus", "stl", "3dbenchy_lowpoly_aria876.stl"), process=False)
    p = tmp_path / "benchy_ascii.stl"
    p.write_text(trimesh.exchange.stl.export_stl_ascii(src))
    light = read_stl(p)
    _same_solid(light, trimesh.load(p, force="mesh", process=False))
    # ASCII keeps the text's float64 values, not float32 ones
    assert light.vertices.dtype == np.float64


def test_3mf_written_by_trimesh_reads_the_same(tmp_path):
    src = trimesh.load(need_shared("corpus", "stl", "tiy_keychain_text.stl"), process=False)
    p = tmp_path / "keychain.3mf"
    src.export(p)
    _same_solid(read_3mf(p), trimesh.load(p, force="mesh", process=False))


def test_3mf_written_by_prusaslicer_reads_the_same(tmp_path):
    exe = shutil.which("prusa-slicer")
    if exe is None:
        pytest.skip("prusa-slicer is not installed")
    stl = need_shared("corpus", "stl", "3dbenchy_lowpoly_aria876.stl")
    out = tmp_path / "benchy.3mf"
    subprocess.run(
        [exe, "--export-3mf", "-o", str(out), str(stl)], capture_output=True, timeout=300
    )
    if not out.exists():
        pytest.skip("prusa-slicer did not write a 3MF here")
    light = read_3mf(out)
    _same_solid(light, trimesh.load(out, force="mesh", process=False))
    # PrusaSlicer stores the part centred with a build-item transform: same solid as the STL
    assert load_mesh(out).volume_mm3 == pytest.approx(load_mesh(stl).volume_mm3, rel=1e-6)


_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">
 <resources>
  <object id="1" type="model"><mesh><vertices>{v}</vertices><triangles>{t}</triangles></mesh>
  </object>
  <object id="2" type="model"><components>
   <component objectid="1" transform="0 1 0 -1 0 0 0 0 1 5 0 0"/>
   <component objectid="1" transform="-1 0 0 0 1 0 0 0 1 -30 0 0"/>
  </components></object>
 </resources>
 <build><item objectid="2" transform="1 0 0 0 1 0 0 0 2 0 0 7"/></build>
</model>"""


def test_3mf_components_rotations_and_mirrors_match_trimesh(tmp_path):
    box = trimesh.creation.box((4.0, 6.0, 8.0))
    box.apply_translation([10.0, 2.0, 4.0])
    v = "".join(f'<vertex x="{x!r}" y="{y!r}" z="{z!r}"/>' for x, y, z in box.vertices.tolist())
    t = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in box.faces)
    p = tmp_path / "components.3mf"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("3D/3dmodel.model", _MODEL.format(v=v, t=t))
    light = read_3mf(p)
    _same_solid(light, trimesh.load(p, force="mesh", process=False))
    # two copies, z stretched ×2, the mirrored one re-wound so both stay outward
    assert light.volume == pytest.approx(2 * 2 * 4 * 6 * 8)


def test_light_checks_agree_with_trimesh_on_a_messy_mesh():
    """Near-duplicate vertices, a degenerate face, two bodies, one flipped face:
    merge, degenerate filter, open edges, winding, bodies and adjacency as trimesh finds them."""
    a = trimesh.creation.icosphere(2, 3.0)
    b = trimesh.creation.box((2.0, 2.0, 2.0))
    b.apply_translation([10.0, 0.0, 0.0])
    both = trimesh.util.concatenate([a, b])
    tri = both.triangles.copy()
    tri[5] += 1e-12  # within trimesh's merge distance (1e-8): still joined to its neighbours
    tri[7] = tri[7][[0, 2, 1]]  # one face wound the wrong way
    soup = np.concatenate([tri, [[[0.0, 0, 0], [1, 0, 0], [2, 0, 0]]]]).reshape(-1, 3)
    faces = np.arange(len(soup)).reshape(-1, 3)
    ref = trimesh.Trimesh(soup, faces, process=False)
    light = Mesh(soup, faces)
    for m in (ref, light):
        m.merge_vertices()
        m.update_faces(m.nondegenerate_faces())
        m.remove_unreferenced_vertices()
    np.testing.assert_array_equal(light.vertices, ref.vertices)
    np.testing.assert_array_equal(light.faces, ref.faces)
    assert light.body_count == ref.body_count == 2
    assert light.is_winding_consistent is ref.is_winding_consistent is False
    assert light.is_watertight == ref.is_watertight
    assert len(light.edges_unique) == len(ref.edges_unique)
    assert light.volume == float(ref.volume)
    np.testing.assert_array_equal(light.face_normals, ref.face_normals)
    np.testing.assert_array_equal(light.area_faces, ref.area_faces)
    mine = sorted(
        zip(light.face_adjacency_edges.tolist(), light.face_adjacency_angles, strict=True)
    )
    theirs = sorted(zip(ref.face_adjacency_edges.tolist(), ref.face_adjacency_angles, strict=True))
    assert mine == theirs


def test_vertex_components_of_a_known_graph():
    # 0-1-2 path, 3-4, 5 alone, 9-8-7-6 path given backwards
    edges = np.array([[2, 1], [1, 0], [4, 3], [9, 8], [8, 7], [7, 6]])
    assert vertex_components(10, edges).tolist() == [0, 0, 0, 3, 3, 5, 6, 6, 6, 6]


def test_hull_perimeter_of_a_rectangle_with_inner_points():
    rng = np.random.default_rng(3)
    inner = rng.uniform([0.5, 0.5], [6.5, 2.5], size=(200, 2))
    corners = np.array([[0.0, 0.0], [7.0, 0.0], [7.0, 3.0], [0.0, 3.0]])
    edge_points = np.array([[3.0, 0.0], [7.0, 1.5], [0.0, 2.0]])  # on the hull, not corners
    assert hull_perimeter(np.concatenate([inner, corners, edge_points])) == 20.0


@pytest.mark.parametrize("n", [3, 5, 12, 64])
def test_hull_perimeter_of_a_regular_polygon(n):
    r = 10.0
    a = 2 * math.pi * np.arange(n) / n + 0.1
    ring = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    inside = 0.5 * ring[::-1]
    exact = 2 * n * r * math.sin(math.pi / n)
    assert hull_perimeter(np.concatenate([inside, ring])) == pytest.approx(exact, rel=1e-14)


def test_hull_perimeter_of_collinear_points_is_zero():
    assert hull_perimeter(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])) == 0.0
    assert hull_perimeter(np.array([[1.0, 0.0], [1.0, 3.0], [1.0, 2.0]])) == 0.0
