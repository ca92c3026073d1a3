"""Planner and thermal arithmetic against hand-derived kinematics and exact heater solutions."""

from __future__ import annotations

import math

import pytest

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.machine import load_machine
from slicer_energy.thermal import HeaterModel, heater_interval


def _write(tmp_path, lines):
    p = tmp_path / "m.gcode"
    p.write_text("\n".join(lines) + "\n")
    return p


def _mk3s_at_1000(**kinematics: float | tuple[float, ...]):
    """The MK3S with 1000 mm/s² moves (axis limits far above) and the given overrides."""
    m = load_machine("prusa-mk3s")
    kin = m.kinematics.with_(
        max_accel_mm_s2=(5000.0, 5000.0, 200.0, 5000.0), accel_travel_mm_s2=1000.0, **kinematics
    )
    return m.with_kinematics(kin)


@pytest.mark.parametrize("mode", ["marlin", "klipper"])
def test_single_move_is_a_trapezoid(tmp_path, mode):
    # 100 mm at 100 mm/s, a = 1000 mm/s² (both limits well above): from rest to rest
    # t = d/v + v/a = 1.0 + 0.1 s (Marlin's 0.05 mm/s minimum planner speed: < 1e-4 s)
    m = _mk3s_at_1000(
        jerk_mm_s=(0.0, 0.0, 0.0, 0.0),
        klipper_max_accel_mm_s2=1000.0,
        klipper_max_velocity_mm_s=500.0,
        klipper_minimum_cruise_ratio=0.0,
    )
    p = _write(tmp_path, ["G1 X100 F6000"])
    res = analyze_file(p, m, mode=mode, thermal=False)
    assert res.print_time_s == pytest.approx(1.1, abs=2e-3)


def test_square_corner_marlin_jerk(tmp_path):
    # two 50 mm legs at 100 mm/s with a 90° corner, classic jerk 10 mm/s, a = 1000:
    # junction speed: per-axis jump 100 -> must be <= 10, so v_j = 10 mm/s.
    # leg time = accel 0->100 (0.1 s, 5 mm) + cruise + decel 100->10 (0.09 s, 4.95 mm)
    m = _mk3s_at_1000(jerk_mm_s=(10.0, 10.0, 0.4, 4.5), min_planner_speed_mm_s=0.0)
    p = _write(tmp_path, ["G1 X50 F6000", "G1 Y50"])
    res = analyze_file(p, m, mode="marlin", thermal=False)
    # the first block starts at its safe (jerk) speed 10 mm/s; the last one stops at 0.
    leg1 = 0.09 + 0.09 + (50 - 2 * 4.95) / 100  # 10 -> 100 -> 10
    leg2 = 0.09 + 0.10 + (50 - 4.95 - 5.0) / 100  # 10 -> 100 -> 0
    assert res.print_time_s == pytest.approx(leg1 + leg2, abs=2e-3)


def test_buffer_window_slows_short_segments(tmp_path):
    # 400 collinear 0.1 mm segments: with a 16-block buffer Marlin cannot reach 100 mm/s
    # (it must be able to stop within ~14 blocks = 1.4 mm); Klipper plans the whole stretch.
    m = _mk3s_at_1000(
        klipper_max_accel_mm_s2=1000.0,
        klipper_minimum_cruise_ratio=0.0,
        klipper_square_corner_velocity_mm_s=5.0,
    )
    lines = ["G1 F6000"] + [f"G1 X{0.1 * (i + 1):.1f}" for i in range(400)]
    p = _write(tmp_path, lines)
    marlin = analyze_file(p, m, mode="marlin", thermal=False).print_time_s
    klipper = analyze_file(p, m, mode="klipper", thermal=False).print_time_s
    assert klipper == pytest.approx(40 / 100 + 0.1, abs=0.01)
    v_buf = math.sqrt(2 * 1000 * 1.4)  # ~53 mm/s
    assert marlin == pytest.approx(40 / v_buf, rel=0.08)


def test_heater_interval_matches_fine_stepping():
    h = HeaterModel(p_max_w=40.0, r_k_per_w=20.0, c_j_per_k=10.0, t_amb_c=22.0)
    t_end, e = heater_interval(h, 22.0, 200.0, 300.0)
    # reference: explicit Euler with a bang-bang controller at 1 ms
    t, ej, dt = 22.0, 0.0, 1e-3
    for _ in range(300_000):
        u = 1.0 if t < 200.0 else (200.0 - 22.0) / 20.0 / 40.0
        ej += u * 40.0 * dt
        t += dt * (u * 40.0 - (t - 22.0) / 20.0) / 10.0
    assert t_end == pytest.approx(t, abs=0.05)
    assert e == pytest.approx(ej, rel=2e-3)


def test_waits_use_the_heater_model(tmp_path):
    m = load_machine("prusa-mk3s")
    p = _write(tmp_path, ["M104 S215", "M109 S215", "G1 X10 F600"])
    res = analyze_file(p, m, mode="marlin")
    assert res.time_by_phase_s["wait"] == pytest.approx(m.hotend.time_to_reach_s(22.0, 215.0))
    assert res.energy_by_component_j["hotend"] > m.hotend.p_max_w * res.time_by_phase_s["wait"]
