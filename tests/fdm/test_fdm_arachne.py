"""Arachne's bead count on thin walls, against values worked out by hand from PrusaSlicer
2.5's beading strategy (libslic3r/Arachne/BeadingStrategy, WallToolPaths::generate)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import trimesh

from slicer_energy.fdm import prusaslicer
from slicer_energy.fdm.arachne import bead_count, central_slope, transition_widths
from slicer_energy.fdm.features import decompose
from slicer_energy.fdm.settings import load_preset
from slicer_energy.voxelize import voxelize

from conftest import need_shared

# MK3S 0.20 mm QUALITY: 0.45 mm beads 0.2 mm high, 0.4 mm nozzle, 2 perimeters.
# spacing = 0.45 - 0.2 (1 - π/4) = 0.407080; Arachne's outline is the island inset by
# (0.45 - 0.407080) / 2 per side, so a section W wide is T = W - 0.042920 to it.
# split = 2 · 0.34 / 0.45 - 1 = 0.511111, add = 0.34 / 0.45 = 0.755556 (min_bead_width 85 %).
# T at the steps: 0→1 min_feature_size 0.1; 1→2 (1 + split) · s = 0.615143;
# 2→3 2 s + add · s = 1.121731; 3→4 3 s + split · s = 1.429302; 4→5 5 s - 0.01 = 2.025400.
HAND_W = [0.142920, 0.658063, 1.164651, 1.472222, 2.068320]


def test_transition_widths_follow_the_beading_strategy():
    s = load_preset("0.20mm-quality")
    assert (s.w_external_perimeter_mm, s.w_perimeter_mm, s.nozzle_mm) == (0.45, 0.45, 0.4)
    assert transition_widths(s, 0.2) == pytest.approx(HAND_W, abs=2e-6)
    widths = transition_widths(s, 0.2)
    assert list(bead_count([0.1, 0.5, 1.0, 1.2, 1.6, 2.0, 3.0], widths)) == [0, 1, 2, 3, 4, 4, 5]


def _wall(width_mm, length_mm=30.0, height_mm=4.0):
    m = trimesh.creation.box((length_mm, width_mm, height_mm))
    m.apply_translation((0, 0, height_mm / 2))
    return m


@pytest.mark.parametrize("width,inner", [(1.0, 0), (1.2, 1), (1.6, 2), (2.0, 2)])
def test_straight_wall_gets_arachne_inner_beads(width, inner):
    """A 30 mm wall: ``inner`` beads along its ridge (the medial axis's straight part is
    30 - W long; the beads run on into the forks at the ends by up to W/2 each)."""
    s = load_preset("0.20mm-quality").with_overrides(skirt_loops=0)
    f = decompose(voxelize(_wall(width), 0.05, s.layer_height_mm), s)
    mid = slice(5, 15)
    got = f.length_mm["perimeter"][mid]
    if inner == 0:
        assert (got < 0.5).all()
    else:
        assert (got > inner * (30 - 2 * width)).all() and (got < inner * 30).all()
        # One middle bead (or one loop of two): a single inner path per layer.
        assert (f.inner_paths[mid] == 1).all()
    if width < 1.67:  # no infill: the beads fill the section, whatever their count
        vol = f.volume_mm3["external_perimeter"][mid] + f.volume_mm3["perimeter"][mid]
        section = 30 * width * s.layer_height_mm
        assert np.allclose(vol, section, rtol=0.06), (vol.mean(), section)
    # The external beads stay one loop around the wall.
    ext = f.length_mm["external_perimeter"][mid]
    assert (ext > 2 * (30 - width)).all() and (ext < 2 * (30 + width)).all()
    assert math.isfinite(float(ext.sum()))


def test_steep_elliptic_section_keeps_its_middle_beads_to_the_ends():
    """An upright elliptic prism 2.8 x 1.6 mm (a strut's section): Arachne counts 4 beads at
    the 1.6 mm middle and hands that beading down the steep ridge to the tips, so the two
    inner beads are one loop, the contour at ``(t1 + R) / 2 = 0.614`` mm from the outline
    (3.08 mm long by hand), where the local width would give 3 beads and one middle bead.
    PrusaSlicer 2.5's own G-code (MK3S 0.20 mm QUALITY, this prism 4 mm high) has 3.02 mm of
    inner perimeter per layer (mean of layers 5..14)."""
    s = load_preset("0.20mm-quality").with_overrides(skirt_loops=0)
    m = trimesh.creation.cylinder(radius=1.0, height=4.0, sections=256)
    m.apply_scale((1.4, 0.8, 1.0))
    m.apply_translation((0, 0, 2.0))
    f = decompose(voxelize(m, 0.05, s.layer_height_mm), s)
    mid = slice(5, 15)
    got = float(f.length_mm["perimeter"][mid].mean())
    assert got == pytest.approx(3.02, rel=0.06)
    assert (f.inner_paths[mid] == 1).all()


def _inner_mm(s, width_mm: float = 1.2) -> np.ndarray:
    """Inner-bead length per layer (middle layers) of a 30 mm wall under settings ``s``."""
    s = s.with_overrides(skirt_loops=0)
    return decompose(voxelize(_wall(width_mm), 0.05, s.layer_height_mm), s).length_mm["perimeter"][
        5:15
    ]


def test_preset_arachne_parameters_reach_the_bead_counts():
    """A 1.2 mm wall (1.157 mm to Arachne) has 3 beads at min_bead_width 0.34 mm and 2 at
    0.48 mm (add = min(0.48 / 0.45, 0.99): the 2 -> 3 step at 2.99 spacings, 1.217 mm);
    min_feature_size is the 0 -> 1 step; wall_transition_angle sets the central slope."""
    s = load_preset("0.20mm-quality")
    wide = s.with_overrides(min_bead_width_mm=0.48)
    assert bead_count(1.2, transition_widths(s, 0.2)) == 3
    assert bead_count(1.2, transition_widths(wide, 0.2)) == 2
    assert (_inner_mm(s) > 20.0).all() and (_inner_mm(wide) < 1.0).all()
    fine = s.with_overrides(min_feature_size_mm=0.2)
    assert transition_widths(fine, 0.2)[0] - transition_widths(s, 0.2)[0] == pytest.approx(0.1)
    steeper = s.with_overrides(wall_transition_angle_deg=30.0)
    assert central_slope(steeper) == pytest.approx(math.sin(math.radians(15.0)))
    assert central_slope(s) == pytest.approx(math.sin(math.radians(5.0)))


@pytest.mark.parametrize("min_bead_width,inner", [("85%", True), ("120%", False)])
def test_preset_min_bead_width_moves_the_bead_count_as_in_prusaslicer(
    tmp_path, min_bead_width, inner
):
    """The same wall sliced by PrusaSlicer 2.5 with the MK3S .ini at min_bead_width 85 % and
    120 %, and predicted from the same .ini: both have inner perimeters only at 85 %."""
    if prusaslicer.executable() is None:
        pytest.skip("prusa-slicer not installed")
    ref = need_shared("reference", "prusaslicer", "mk3s_pla_020.ini").read_text()
    text, n = re.subn(r"(?m)^min_bead_width = .*$", f"min_bead_width = {min_bead_width}", ref)
    assert n == 1
    ini = tmp_path / "wall.ini"
    ini.write_text(text)
    stl = tmp_path / "wall.stl"
    _wall(1.2).export(stl)
    gcode = prusaslicer.slice_stl(stl, ini, tmp_path / "wall.gcode").gcode.read_text()
    assert (";TYPE:Perimeter" in gcode) == inner
    ours = _inner_mm(load_preset(ini))
    assert (ours > 20.0).all() if inner else (ours < 1.0).all(), ours
