"""The one timeline (slicer_energy.thermal): closed forms, and its scalar and vectorised
forms against each other."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from slicer_energy.calib.trace import replay_parts
from slicer_energy.errors import GcodeError
from slicer_energy.machine import load_machine
from slicer_energy.thermal import (
    ElectricalModel,
    HeaterModel,
    Run,
    SetPoints,
    Timeline,
    TimelineRow,
    Wait,
    heater_interval,
    step_array,
    wait_s,
    wall_power_array,
)

HOTEND = HeaterModel(p_max_w=40.0, r_k_per_w=6.0, c_j_per_k=12.0, t_amb_c=22.0)
ELEC = ElectricalModel(7.0, 4.0, 6.0, 2.5, 0.85)


def test_constant_power_integrates_exactly():
    """Heaters off, steppers held, fan at 40 %: the wall energy is P·t/η for any steps."""
    m = replace(load_machine("prusa-mk3s"), electrical=ELEC)
    tl = Timeline(m, thermal=False)
    tl.steppers, tl.fan = True, 0.4
    dts = np.random.default_rng(0).uniform(0.0, 50.0, 200)
    for dt in dts:
        tl.advance(float(dt), "dwell", False)
    p_w = (ELEC.p_electronics_w + ELEC.p_steppers_enabled_w + 0.4 * ELEC.p_fans_w) / 0.85
    assert tl.t == pytest.approx(float(dts.sum()), rel=1e-12)
    assert tl.energy_j == pytest.approx(p_w * float(dts.sum()), rel=1e-12)
    assert tl.comp["bed"] == tl.comp["hotend"] == 0.0


@pytest.mark.parametrize("t_s", [0.0, 1.0, 30.0, 72.0, 500.0, 5000.0])
def test_first_order_heater_step_matches_the_closed_form(t_s):
    """From ambient at full power: T = T_amb + P·R·(1 − e^(−t/RC)), scalar and vectorised."""
    h = HOTEND
    want = h.t_amb_c + h.p_max_w * h.r_k_per_w * (1.0 - math.exp(-t_s / h.tau_s))
    assert h.step(h.t_amb_c, 1.0, t_s) == pytest.approx(want, abs=1e-9)
    arr = step_array(np.array([h.t_amb_c]), 1.0, t_s, h.p_max_w, h.r_k_per_w, h.c_j_per_k, 22.0)
    assert arr[0] == pytest.approx(want, abs=1e-9)
    # below an unreachable set point the controller is at full power the whole interval
    t_end, e_j = heater_interval(h, h.t_amb_c, 1000.0, t_s)
    assert t_end == pytest.approx(want, abs=1e-9)
    assert e_j == pytest.approx(h.p_max_w * t_s, rel=1e-12)


@pytest.mark.parametrize(("t0", "t_set"), [(22.0, 215.0), (22.0, 60.0), (150.0, 200.0)])
def test_wait_time_matches_the_closed_form(t0, t_set):
    """Seconds at full power to reach a set point: −RC·ln((T∞ − T_set)/(T∞ − T0))."""
    h = HOTEND
    t_inf = h.t_amb_c + h.p_max_w * h.r_k_per_w
    want = -h.tau_s * math.log((t_inf - t_set) / (t_inf - t0))
    assert wait_s(h, t0, t_set) == pytest.approx(want, rel=1e-12)
    assert h.step(t0, 1.0, want) == pytest.approx(t_set, abs=1e-9)
    # the timeline's M109 lasts that long and ends at the set point
    m = replace(load_machine("prusa-mk3s"), hotend=h)
    tl = Timeline(m)
    tl.he_c = t0
    tl.play([("heat", [SetPoints(hotend_c=t_set), Wait("hotend")])])
    assert tl.phase["wait"] == pytest.approx(want, rel=1e-12)
    assert tl.he_c == t_set


def test_wait_band_and_cooling():
    h = HOTEND
    assert wait_s(h, 214.6, 215.0) == 0.0  # inside the firmware's window
    assert wait_s(h, 230.0, 215.0) == 0.0  # M109 S does not wait to cool
    cool = wait_s(h, 230.0, 215.0, cool_ok=True)  # M109 R does
    assert cool == pytest.approx(h.tau_s * math.log((230.0 - 22.0) / (215.0 - 22.0)), rel=1e-12)
    assert wait_s(h, 22.0, 0.0) == 0.0  # heater off


def test_unreachable_set_point_is_a_one_line_error_in_every_user():
    h = HOTEND  # reaches at most 22 + 40·6 = 262 °C
    with pytest.raises(GcodeError, match=r"^set point 300 °C is above .*262 °C") as ei:
        wait_s(h, 22.0, 300.0, name="hotend")
    assert "\n" not in str(ei.value)
    m = replace(load_machine("prusa-mk3s"), hotend=h)
    with pytest.raises(GcodeError, match="above what the hotend heater model can reach"):
        Timeline(m).play([("heat", [SetPoints(hotend_c=300.0), Wait("hotend")])])
    # trace calibration used to replay this as a silent 3600 s wait
    rows = [TimelineRow(0, 0, "wait", 0, 0.0, 300.0, 0.0, 60.0, 0.0, 0.0, 0.0, 0.0, 0.0)]
    with pytest.raises(GcodeError, match="above what the hotend heater model can reach"):
        replay_parts(rows, m)


def test_scalar_and_vectorised_forms_agree():
    rng = np.random.default_rng(15)
    n = 2000
    p, r, c, ta = (rng.uniform(lo, hi, n) for lo, hi in ((5, 300), (0.1, 10), (5, 900), (10, 35)))
    t0, duty = rng.uniform(0, 280, n), rng.uniform(0, 1, n)
    dt, flow = rng.uniform(0, 600, n), rng.uniform(0, 0.05, n)
    vec = step_array(t0, duty, dt, p, r, c, ta, flow)  # the fits pass arrays throughout
    sca = np.array(
        [
            HeaterModel(*q[:4]).step(*q[4:])
            for q in zip(p, r, c, ta, t0, duty, dt, flow, strict=True)
        ]
    )
    assert np.max(np.abs(vec - sca) / np.maximum(1.0, np.abs(sca))) < 1e-12
    # wall power: one row of machine state per sample
    en, mv = rng.integers(0, 2, n).astype(bool), rng.integers(0, 2, n).astype(bool)
    fan, dh, db = rng.uniform(0, 1, (3, n))
    loads = np.array([7.3, 4.1, 6.2, 2.4, 40.0, 220.0])
    el = ElectricalModel(*loads[:4], psu_efficiency=0.87)
    states = np.column_stack([np.ones(n), en, en & mv, fan, dh, db])
    vec_w = wall_power_array(states, loads, 0.87)
    sca_w = np.array(
        [el.wall_power_w(db[i] * 220.0, dh[i] * 40.0, en[i], mv[i], fan[i]) for i in range(n)]
    )
    assert np.max(np.abs(vec_w - sca_w) / sca_w) < 1e-12


def test_schedule_phases_add_up():
    """An explicit schedule: phase energies sum to the total, phase times to the time."""
    m = load_machine("prusa-mk3s")
    tl = Timeline(m)
    by_label = tl.play(
        [
            ("heat_up", [SetPoints(hotend_c=215.0, bed_c=60.0), Wait("bed"), Wait("hotend")]),
            ("print", [SetPoints(steppers=True, fan=1.0), Run(600.0, extruded_mm=500.0)]),
        ]
    )
    assert sum(by_label.values()) == pytest.approx(tl.energy_j, rel=1e-12)
    assert sum(tl.phase.values()) == pytest.approx(tl.t, rel=1e-12)
    assert tl.phase["motion"] == pytest.approx(600.0 * m.time_scale)
