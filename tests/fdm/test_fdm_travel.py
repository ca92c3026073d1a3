"""Travel as paths (fdm/travel.py): where the islands are, the chain between them, and the
retraction rule, checked against hand-computed layouts and PrusaSlicer's own G-code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from slicer_energy.fdm import prusaslicer
from slicer_energy.fdm.features import decompose
from slicer_energy.fdm.reference_parts import reference_parts
from slicer_energy.fdm.settings import load_preset
from slicer_energy.fdm.time import MotionLimits, trapezoid_s
from slicer_energy.fdm.travel import chain, layer_travels, retraction_s, travel_s
from slicer_energy.voxelize import voxelize

from conftest import CORPUS, SHARED


def _posts(n_side, gap, size=4.0, h=2.0):
    """n_side x n_side square posts ``size`` mm wide, ``gap`` mm apart (one mesh)."""
    boxes = []
    for i in range(n_side):
        for j in range(n_side):
            b = trimesh.creation.box((size, size, h))
            b.apply_translation((i * (size + gap), j * (size + gap), h / 2))
            boxes.append(b)
    return trimesh.util.concatenate(boxes)


def test_islands_are_found_where_they_are():
    s = load_preset()
    f = decompose(voxelize(_posts(3, 6.0), 0.1, s.layer_height_mm), s)
    xy = f.islands_at[5]
    assert len(xy) == 9
    # centres 10 mm apart, areas 16 mm² (to the grid's cell)
    d = np.sort(np.hypot(*(xy[:, None, :2] - xy[None, :, :2]).T).ravel())
    assert d[9] == pytest.approx(10.0, abs=0.1)
    assert xy[:, 2] == pytest.approx(16.0, rel=0.05)


def test_chain_visits_a_row_of_islands_in_order():
    pts = np.array([[30.0, 0], [0, 0], [20, 0], [10, 0], [40, 0]])
    order = chain(pts)
    path = np.abs(np.diff(pts[order, 0])).sum()
    assert path == 40.0  # end to end, no back and forth
    assert sorted(order) == list(range(5))


def test_a_layer_of_posts_travels_to_each_post_and_into_its_fill():
    s = load_preset()
    f = decompose(voxelize(_posts(3, 6.0), 0.1, s.layer_height_mm), s)
    k, length = layer_travels(f, s)
    jumps = length[k == 5][:9]  # the layer change, then post to post
    # 8 jumps between neighbours 10 mm apart (centre to centre), each landing on the seam
    # of a 4 mm post: hypot(10, r) with r = sqrt(16/π); the layer change goes back from the
    # chain's end to its start (the order is the same every layer), at least one post away
    r = math.sqrt(16 / math.pi)
    assert np.sort(jumps)[:8] == pytest.approx(math.hypot(10, r), rel=0.03)
    assert jumps[0] > 20
    # each post: a jump to it, a short hop between its two loops and a nozzle diameter into
    # the part after the external loop (neither retracting), and a travel from the loops
    # into its fill area (retracting: the 2.2 mm fill square's equivalent radius is over
    # retract_before_travel's 1 mm)
    tv = travel_s(f, s, MotionLimits())
    assert f.fill_parts[5] == 9
    assert tv.travels[5] == 36
    assert tv.retractions[5] == 18
    assert np.sort(length[k == 5])[:9] == pytest.approx(s.nozzle_mm)


def _holed_plate(n=3, pitch=12.0, hole=4.0, h=2.0):
    """A square plate with an n x n grid of square holes ``pitch`` apart (one island)."""
    size = n * pitch
    plate = trimesh.creation.box((size, size, h))
    plate.apply_translation((size / 2, size / 2, h / 2))
    cuts = []
    for i in range(n):
        for j in range(n):
            b = trimesh.creation.box((hole, hole, h + 2))
            b.apply_translation(((i + 0.5) * pitch, (j + 0.5) * pitch, h / 2))
            cuts.append(b)
    return plate.difference(trimesh.util.concatenate(cuts))


def test_an_islands_holes_are_visited_from_it_in_chain_order():
    """A 36 mm plate with nine 4 mm holes 12 mm apart, and a post: the plate (the chain's
    first: the two are as far from their centre), its central hole (whose loop lies R - r
    inside the plate's outline, R = sqrt(36²/π)), the other eight holes one pitch apart, each
    landing on a loop of r = sqrt(16/π), then the post."""
    s = load_preset()
    post = trimesh.creation.box((4.0, 4.0, 2.0))
    post.apply_translation((56.0, 18.0, 1.0))
    f = decompose(voxelize(trimesh.util.concatenate([_holed_plate(), post]), 0.1, 0.2), s)
    assert f.islands[5] == 2 and f.holes[5] == 9
    assert (f.holes_at[5][:, 3] == np.argmax(f.islands_at[5][:, 2])).all()  # all the plate's
    k, length = layer_travels(f, s)
    hops = length[k == 5][:10]  # the layer change from the post to the plate, then holes
    r, big_r = math.sqrt(16 / math.pi), math.sqrt(36 * 36 / math.pi)
    r_plate = math.sqrt((36 * 36 - 9 * 16) / math.pi)  # a jump lands on the island's r
    assert hops[0] == pytest.approx(math.hypot(38.0, r_plate), rel=0.01)
    assert hops[1] == pytest.approx(big_r - r, rel=0.02)
    assert hops[2:] == pytest.approx(math.hypot(12.0, r), rel=0.02)


def test_every_hole_of_a_thin_walled_grid_is_reached_by_a_retracting_travel(tmp_path):
    """25 holes in 1.2 mm walls, no fill: each hole's loop is a travel of several mm away,
    so every contour retracts (before holes were paths, none did); PrusaSlicer retracts at
    least that often (more: Arachne's middle beads split at the walls' junctions)."""
    s = load_preset()
    mesh = _holed_plate(n=5, pitch=8.0, hole=6.8)
    tv = travel_s(decompose(voxelize(mesh, 0.1, 0.2), s), s, MotionLimits())
    assert tv.retractions[3:9].tolist() == [26] * 6  # 1 island + 25 holes
    ini = SHARED / "reference" / "prusaslicer" / "mk3s_pla_020.ini"
    if prusaslicer.executable() is None or not ini.exists():
        pytest.skip("prusa-slicer or ../shared/reference missing: PrusaSlicer's count unchecked")
    mesh.export(tmp_path / "grid.stl")
    ref = prusaslicer.slice_stl(tmp_path / "grid.stl", ini, tmp_path / "grid.gcode")
    per_layer, layer = [0] * 10, -1
    for line in ref.gcode.open():
        layer += line.startswith(";LAYER_CHANGE")
        if line.startswith("G1 E-") and 0 <= layer < 10:
            per_layer[layer] += 1
    assert min(per_layer[3:9]) >= 26


def test_short_travels_do_not_retract_and_long_ones_cost_a_cycle():
    s, m = load_preset(), MotionLimits()
    # PrusaSlicer MK3S: wipe 0.8/35·144 mm at 144 mm/s, lift 0.4 mm up and down, prime 0.8 mm
    wipe = trapezoid_s(0.8 / 35 * 144, 144, 1000, 8)
    lift = 2 * trapezoid_s(0.4, 12, 200, 0.4)
    prime = trapezoid_s(0.8, 35, 1250, 4.5)
    assert retraction_s(s, m) == pytest.approx(float(wipe + lift + prime), rel=1e-6)
    assert s.retract_min_travel_mm == 1.0  # retract_before_travel of the MK3S profile


def _travels_per_layer(gcode) -> list[int]:
    """XY moves without extrusion per layer of a PrusaSlicer G-code file (wipes extrude)."""
    counts: list[int] = []
    for line in gcode.open():
        if line.startswith(";LAYER_CHANGE"):
            counts.append(0)
        elif line.startswith("G1 ") and counts:
            words = {w[0] for w in line.split(";")[0].split()[1:]}
            counts[-1] += bool(words & {"X", "Y"}) and "E" not in words
    return counts


@pytest.mark.skipif(prusaslicer.executable() is None, reason="prusa-slicer not installed")
def test_travels_per_layer_match_prusaslicers_gcode_on_posts(tmp_path):
    """Nine posts: every travel of a middle layer, moves inwards after the loops included."""
    ini = SHARED / "reference" / "prusaslicer" / "mk3s_pla_020.ini"
    if not ini.exists():
        pytest.skip("../shared/reference not beside the checkout")
    mesh = _posts(3, 6.0)
    mesh.export(tmp_path / "posts.stl")
    ref = prusaslicer.slice_stl(tmp_path / "posts.stl", ini, tmp_path / "posts.gcode")
    want = _travels_per_layer(ref.gcode)
    s = load_preset()
    tv = travel_s(decompose(voxelize(mesh, 0.1, s.layer_height_mm), s), s, MotionLimits())
    assert len(want) == len(tv.travels) == 10
    assert tv.travels[3:9].tolist() == want[3:9]  # the first and last layers add a few of their own


@pytest.mark.skipif(prusaslicer.executable() is None, reason="prusa-slicer not installed")
def test_retractions_match_prusaslicers_gcode_on_a_plate_of_four(tmp_path):
    """Four calibration cubes in one mesh: retractions within 10 % of the G-code's count."""
    ini = SHARED / "reference" / "prusaslicer" / "mk3s_pla_020.ini"
    if not ini.exists() or not (CORPUS / "stl").exists():
        pytest.skip("../shared/reference or ../shared/corpus not beside the checkout")
    part = reference_parts(tmp_path, CORPUS / "stl", ["calibration_cube_x4"])[0]
    ref = prusaslicer.slice_stl(part.path, ini, tmp_path / "plate.gcode")
    n_ref = sum(1 for line in ref.gcode.open() if line.startswith("G1 E-"))
    s = load_preset()
    mesh = trimesh.load(part.path)
    f = decompose(voxelize(mesh, 0.2, s.layer_height_mm), s)
    ours = travel_s(f, s, MotionLimits()).retractions.sum()
    assert ours == pytest.approx(n_ref, rel=0.10)
