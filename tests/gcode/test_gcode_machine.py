"""FDM machine profiles: sourced numbers, bounds and unknown keys checked at load."""

from __future__ import annotations

import pytest

from slicer_energy.errors import ProfileError
from slicer_energy.machine import load_machine
from slicer_energy.resources import data_file


@pytest.mark.parametrize("name", ["prusa-mk3s", "ender3-v2"])
def test_bundled_profiles_load_with_sources(name):
    m = load_machine(name)
    assert m.name == name
    # every number has a source; assumptions are marked as such
    for key in (
        "hotend.p_max_w",
        "bed.p_max_w",
        "kinematics.max_accel_mm_s2",
        "electrical.psu_efficiency",
    ):
        assert m.source.get(key), key
    assert m.hotend.max_temp_c() > 260  # can reach PLA/PETG temperatures


def test_mk3s_values_match_the_firmware_sources():
    m = load_machine("prusa-mk3s")
    assert (m.hotend.p_max_w, m.hotend.r_k_per_w, m.hotend.c_j_per_k) == (38, 20.5, 12.1)
    assert m.kinematics.max_feedrate_mm_s == (200, 200, 12, 120)
    assert m.kinematics.jerk_mm_s == (8, 8, 0.4, 4.5)


def _write(tmp_path, text):
    src = data_file("hardware", "fdm", "prusa-mk3s.toml").read_text()
    p = tmp_path / "x.toml"
    p.write_text(src + text)
    return p


def test_unknown_key_is_an_error(tmp_path):
    src = data_file("hardware", "fdm", "prusa-mk3s.toml").read_text()
    p = tmp_path / "typo.toml"
    p.write_text(src.replace("p_max_w = 38", "p_maxw = 38"))
    with pytest.raises(ProfileError, match="p_maxw"):
        load_machine(p)


def test_out_of_range_names_key_and_range(tmp_path):
    src = data_file("hardware", "fdm", "prusa-mk3s.toml").read_text()
    p = tmp_path / "bad.toml"
    old = "psu_efficiency = { value = 0.88, low = 0.8, high = 0.92,"
    assert old in src
    p.write_text(src.replace(old, "psu_efficiency = { value = 1.7, low = 0.8, high = 1.8,"))
    with pytest.raises(ProfileError, match=r"electrical.psu_efficiency = 1.7 .*\[0.3, 1.0\]"):
        load_machine(p)
