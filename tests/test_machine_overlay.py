"""A calibrated overlay's part-fan loss and filament heat capacity reach the G-code timeline.

The fit (``calib/trace.py``, ``calib/fit.py``) estimates ``hotend.g_fan_w_per_k`` and
``filament.cp_j_per_gk``; these tests check that a profile carrying them changes
``gcode`` energy by what the physics says: an extra loss ``fan × g × (T_set − T_amb)`` while
the hotend holds its set point, seen at the wall through the PSU efficiency.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slicer_energy.errors import ProfileError
from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.machine import load_machine

from conftest import CORPUS, need_shared

GCODE = CORPUS / "gcode" / "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz"


def _overlay(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "cal.toml"
    p.write_text(
        'name = "ender3-test-calibrated"\n[calibration]\nbase = "ender3-v2"\n' + body,
        encoding="utf-8",
    )
    return p


def test_fan_loss_adds_the_expected_holding_power(tmp_path):
    need_shared(GCODE)
    base = load_machine("ender3-v2")
    g = 0.05  # W/K at 100 % fan
    cal = load_machine(
        _overlay(tmp_path, f'[hotend]\ng_fan_w_per_k = {{ value = {g}, source = "test" }}\n')
    )
    assert cal.hotend.g_fan_w_per_k == g and base.hotend.g_fan_w_per_k == 0.0
    r0 = analyze_file(GCODE, base, keep_rows=True, timeline=True)
    r1 = analyze_file(GCODE, cal, keep_rows=True, timeline=True)
    # Expected extra heater energy: only where the hotend is held at its set point.
    expect_j = sum(
        row.fan * g * (row.hotend_set_c - base.hotend.t_amb_c) * (row.t1_s - row.t0_s)
        for row in r0.timeline
        if row.hotend_set_c > 0 and abs(row.hotend_c - row.hotend_set_c) < 0.5
    )
    expect_j /= base.electrical.psu_efficiency
    got_j = r1.energy_by_component_j["hotend"] - r0.energy_by_component_j["hotend"]
    assert expect_j > 1000.0  # the file runs its part fan for minutes
    assert got_j == pytest.approx(expect_j, rel=0.05)
    assert r1.time_s == pytest.approx(r0.time_s, rel=1e-9)


def test_filament_cp_overlay_scales_flow_heating(tmp_path):
    need_shared(GCODE)
    base = load_machine("ender3-v2")
    cp = 2.0 * base.filament.cp_j_per_gk
    cal = load_machine(
        _overlay(tmp_path, f'[filament]\ncp_j_per_gk = {{ value = {cp}, source = "test" }}\n')
    )
    assert cal.filament.cp_j_per_gk == cp
    r0 = analyze_file(GCODE, base, timeline=True)
    r1 = analyze_file(GCODE, cal)
    t_set_c = max(row.hotend_set_c for row in r0.timeline)  # the file's M109 (205 °C)
    # Doubling c_p doubles the filament's heating: mass × c_p × (T_set − T_amb).
    mass_g = base.filament.mass_g(r0.filament_mm)
    expect_j = mass_g * base.filament.cp_j_per_gk * (t_set_c - base.hotend.t_amb_c)
    expect_j /= base.electrical.psu_efficiency
    got_j = r1.energy_by_component_j["hotend"] - r0.energy_by_component_j["hotend"]
    assert got_j == pytest.approx(expect_j, rel=0.03)


def test_fan_loss_out_of_range_is_refused(tmp_path):
    with pytest.raises(ProfileError, match="g_fan_w_per_k"):
        load_machine(_overlay(tmp_path, "[hotend]\ng_fan_w_per_k = { value = 50, source = 'x' }\n"))


def test_predict_applies_a_calibrated_time_scale(tmp_path):
    """``predict --profile`` with a calibrated overlay: motion takes time_scale × longer."""
    from slicer_energy.predict import predict_part
    from slicer_energy.samples import resolve_part

    part = resolve_part("phone_case")
    base = predict_part(part, "fdm", machine="ender3-v2")
    prof = _overlay(tmp_path, 'time_scale = { value = 1.25, source = "test" }\n')
    cal = predict_part(part, "fdm", machine=str(prof))
    assert base.provenance["kind"] == "default" and cal.provenance["kind"] == "calibrated"
    assert cal.time_by_phase_s["print"] == pytest.approx(1.25 * base.time_by_phase_s["print"])
    # Planned motion (what a slicer estimates) is the same; only the real-time factor differs.
    assert cal.extra["print_time_s"] == pytest.approx(base.extra["print_time_s"])
    # Longer printing holds the heaters longer: more energy, but less than 25 % more.
    assert base.energy_j < cal.energy_j < 1.25 * base.energy_j
