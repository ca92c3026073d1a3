"""Sample parts: watertight, the documented sizes, the bracket pair's mass relation."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_energy.samples import SAMPLES, resolve_part, sample_mesh

ALU_G_PER_MM3 = 2.7e-3


@pytest.mark.parametrize("name", SAMPLES)
def test_watertight_single_body(name):
    m = sample_mesh(name)
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    assert m.body_count == 1
    assert m.bounds[0][2] == pytest.approx(0.0)


def test_phone_case_dimensions():
    m = sample_mesh("phone_case")
    assert m.extents == pytest.approx([72.0, 150.0, 9.0], abs=0.01)
    # Thin shell: solid share of its bounding box is small (a case, not a block).
    assert 0.1 < m.volume / np.prod(m.extents) < 0.3
    # The lip: 0.6 mm inside the side wall there is material at the top (the lip over the
    # screen edge) but not at mid height (the pocket that holds the phone).
    x = 1.4 + 0.6
    assert m.contains([[x, 75.0, 8.4]])[0]
    assert not m.contains([[x, 75.0, 5.0]])[0]
    assert m.contains([[0.7, 75.0, 5.0]])[0]  # the side wall itself


def test_bracket_about_one_kilogram():
    m = sample_mesh("bracket")
    assert 0.95 < m.volume * ALU_G_PER_MM3 / 1000 < 1.05


def test_bionic_is_forty_percent_lighter_with_same_interface():
    conv = sample_mesh("bracket")
    bionic = sample_mesh("bracket_bionic")
    assert bionic.volume / conv.volume == pytest.approx(0.6, abs=0.01)
    # Same bolt holes: a vertical probe through each hole centre hits nothing.
    for x, y in [(20.0, 20.0), (140.0, 20.0), (20.0, 80.0), (140.0, 80.0)]:
        for m in (conv, bionic):
            assert not m.contains([[x, y, 5.0]])[0]
            assert m.contains([[x + 7.0, y, 5.0]])[0]  # boss material around it


def test_resolve_part_by_name_or_path(tmp_path):
    p = tmp_path / "case.stl"
    sample_mesh("phone_case").export(p)
    a = resolve_part("phone_case")
    b = resolve_part(str(p))
    assert a.volume_mm3 == pytest.approx(b.volume_mm3, rel=1e-5)


def test_cli_sample_names_match():
    from slicer_energy.commands.voxelize import SAMPLES as CLI_SAMPLES

    assert CLI_SAMPLES == SAMPLES
