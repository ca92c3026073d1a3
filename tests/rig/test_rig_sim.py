"""The virtual printer's physics and a whole simulated session against the hidden truth."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from slicer_energy.rig.logger import read_meta, read_power, read_temps
from slicer_energy.rig.sim.demo import TRUTH_SUFFIX, run_demo
from slicer_energy.rig.sim.physics import PARAM_RANGES, Physics, draw_printer, move_time_s

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(120)


def test_printer_seed_draws_within_sourced_ranges_and_repeats():
    a, b, c = draw_printer(5), draw_printer(5), draw_printer(6)
    assert a == b and a != c
    for seed in range(20):
        p = draw_printer(seed)
        lo, hi, _ = PARAM_RANGES["hotend_p_max_w"]
        assert lo <= p.hotend.p_max_w <= hi
        lo, hi, _ = PARAM_RANGES["bed_tau_s"]
        assert lo <= p.bed.r_k_per_w * p.bed.c_j_per_k <= hi + 1e-9
        lo, hi, _ = PARAM_RANGES["psu_efficiency_half_load"]
        assert lo <= p.electrical.psu.efficiency_half_load <= hi
        lo, hi, _ = PARAM_RANGES["hotend_sensor_lag_s"]
        assert lo <= p.hotend.sensor_lag_s <= hi
    for key, (_lo, _hi, src) in PARAM_RANGES.items():
        assert src, key


def _two_node_rhs(h):
    """The heater's equations restated from its documented form (truth.py's docstring), for
    an integration independent of the simulator's stepping: full power, block and sensor."""
    ta_k = h.t_amb_c + 273.15
    d_ref = h.t_ref_c - h.t_amb_c
    q_ref = d_ref / h.r_k_per_w
    rad_ref = (h.t_ref_c + 273.15) ** 4 - ta_k**4

    def rhs(_t, y):
        tb, ts = y
        p = h.p_max_w * (1.0 + h.p_temp_coeff_per_k * (tb - 25.0))
        d = tb - h.t_amb_c
        loss = q_ref * (
            (1 - h.rad_share) * (d / d_ref) ** 1.25
            + h.rad_share * ((tb + 273.15) ** 4 - ta_k**4) / rad_ref
        )
        return [(p - loss) / h.c_j_per_k, (tb - ts) / h.sensor_lag_s]

    return rhs


def test_bed_heats_at_full_power_as_its_equations_say():
    """Until 10 K below target the firmware model heats at full power, so the time for the
    bed's sensor to reach 50 C from 22 C must match an independent integration of the
    two-node equations (scipy, tight tolerance) to one step; then it settles at the target
    with the duty that balances loss and power there."""
    from scipy.integrate import solve_ivp

    params = draw_printer(2)
    ph = Physics(params, 0.0)
    ph.target_bed_c = 60.0
    t = 0.0
    while ph.t_bed_c < 50.0:
        t += ph.DT_S
        ph.advance_to(t)
        assert ph.duty_bed == 1.0
    ev = lambda _t, y: y[1] - 50.0  # noqa: E731
    ev.terminal = True
    sol = solve_ivp(_two_node_rhs(params.bed), (0, 2000), [22.0, 22.0], events=ev, rtol=1e-9)
    assert t == pytest.approx(sol.t_events[0][0], abs=2 * ph.DT_S)
    ph.advance_to(t + 3000.0)
    assert ph.t_bed_c == pytest.approx(60.0, abs=0.3)
    b = params.bed
    hold = b.loss_w(60.0) / (b.p_max_w * (1 + b.p_temp_coeff_per_k * 35.0))
    assert ph.duty_bed == pytest.approx(hold, abs=0.02)


def test_truth_differs_in_form_from_the_fitted_first_order_model():
    """What a first-order model with a constant-efficiency supply cannot be, the simulator
    is: loss not linear in ΔT, a sensor that lags the block, a supply whose efficiency
    changes with load, a fan whose power is not linear in PWM. So a first-order-only sim
    cannot come back unnoticed."""
    p = draw_printer(3)
    for h, dt_k in ((p.hotend, 94.0), (p.bed, 38.0)):
        ratio = h.loss_w(h.t_amb_c + 2 * dt_k) / h.loss_w(h.t_amb_c + dt_k)
        assert ratio > 2.2, ratio  # 2 for a constant R; ≥ 2^1.25 = 2.38 for convection alone
    ph = Physics(p, 0.0)
    ph.target_hotend_c = 250.0
    ph.advance_to(30.0)  # mid heat-up at full power
    assert ph.duty_hotend == 1.0
    assert ph.t_hotend_block_c - ph.t_hotend_c > 3.0  # the sensor lags the block
    el = p.electrical
    assert el.effective_efficiency(8.0) < el.effective_efficiency(100.0) - 0.03
    fan_half = el.dc_w(0.0, False, False, 0.5) - el.dc_w(0.0, False, False, 0.0)
    fan_full = el.dc_w(0.0, False, False, 1.0) - el.dc_w(0.0, False, False, 0.0)
    assert fan_half < 0.4 * fan_full  # 0.5^1.5 = 0.35 at the gentlest drawn exponent
    # and none of its code borrows the fitted model's equations
    import slicer_energy.rig.sim as sim

    for f in Path(sim.__file__).parent.glob("*.py"):
        src = f.read_text()
        assert "thermal import" not in src and "HeaterModel" not in src, f


def test_psu_passes_through_its_stated_points():
    """The supply's loss curve meets what it is drawn from: its no-load draw, η at half load
    and 3 points lower at full load (80 PLUS Bronze's shape)."""
    psu = draw_printer(4).electrical.psu
    assert psu.wall_w(0.0) == pytest.approx(psu.no_load_w)
    half, full = 0.5 * psu.rated_w, psu.rated_w
    assert half / psu.wall_w(half) == pytest.approx(psu.efficiency_half_load, rel=1e-12)
    assert full / psu.wall_w(full) == pytest.approx(psu.efficiency_half_load - 0.03, rel=1e-12)


def test_wall_power_and_energy_bookkeeping():
    params = draw_printer(4)
    ph = Physics(params, 0.0)
    ph.steppers_on = True
    ph.advance_to(10.0)  # heaters off, steppers held: a constant load
    e = params.electrical
    dc_w = e.p_electronics_w + e.p_steppers_enabled_w
    assert ph.power_w == pytest.approx(e.psu.wall_w(dc_w))
    assert ph.energy_j == pytest.approx(e.psu.wall_w(dc_w) * 10.0, rel=1e-9)
    assert ph.energy_dc_j == pytest.approx(dc_w * 10.0, rel=1e-9)
    assert ph.mean_power_w(1.0) == pytest.approx(e.psu.wall_w(dc_w))
    ph.target_bed_c = 100.0  # far away: full power throughout
    ph.advance_to(20.0)
    p_bed = params.bed.power_w(ph.t_bed_block_c, 1.0)
    assert ph.power_w == pytest.approx(e.psu.wall_w(dc_w + p_bed), rel=1e-3)


def test_move_time_trapezoid():
    # 100 mm at 50 mm/s with 1000 mm/s2: 2 s cruise-equivalent + 0.05 s
    assert move_time_s(100.0, 50.0, 1000.0) == pytest.approx(2.05)
    # short move: triangle profile 2*sqrt(d/a)
    assert move_time_s(1.0, 50.0, 1000.0) == pytest.approx(2 * math.sqrt(0.001))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, printer_seed=11, seed=2, scale=200.0, tail_s=20.0), out


def test_demo_session_is_complete_and_consistent(demo):
    res, out = demo
    s = res.session
    assert s.status == "finished", s.messages
    assert s.job.state == "done"
    assert set(s.summary["phases"]) >= {"heatup", "print", "after"}
    truth = tomllib.loads(res.truth_path.read_text())
    # integral of the logged (noisy, 1 s averaged) meter samples vs the simulator's true energy
    # over the same window
    assert s.summary["energy_kwh"] == pytest.approx(
        truth["true_energy_kwh_metered_window"], rel=0.01
    )
    # the meter's 1 Wh counter agrees only to its resolution
    assert abs(s.summary["meter_counter_kwh"] - s.summary["energy_kwh"]) <= 0.0011
    # temperatures were recorded from M155 auto-reports with PWM
    temps = read_temps(s.folder)
    assert {"T0", "B"} <= {r["sensor"] for r in temps}
    assert max(r["actual_c"] for r in temps if r["sensor"] == "T0") > 200.0
    assert any(r["pwm_raw"] == 127 for r in temps)
    assert len(read_power(s.folder)) > 100


def test_truth_lives_outside_the_session_folder(demo):
    res, out = demo
    folder = res.session.folder
    assert res.truth_path.parent == Path(out)
    assert res.truth_path.name == folder.name + TRUTH_SUFFIX
    assert not list(folder.glob("*truth*"))
    truth = tomllib.loads(res.truth_path.read_text())
    assert truth["printer_seed"] == 11
    hidden = [
        truth["params"]["hotend"]["p_max_w"],
        truth["params"]["bed"]["c_j_per_k"],
        truth["params"]["electrical"]["psu_efficiency_half_load"],
    ]
    blob = "\n".join(
        p.read_text(errors="replace") for p in folder.iterdir() if p.suffix != ".parquet"
    )
    for v in hidden:
        assert repr(v) not in blob and f"{v:.6g}" not in blob
    meta = read_meta(folder)
    assert "printer_seed" not in str(meta)
    assert meta["printer"]["simulated"] is True


def _bed_rise_s(folder) -> float:
    """Seconds from the first report with the bed target set to the first report >= 50 C."""
    rows = [r for r in read_temps(folder) if r["sensor"] == "B"]
    t_set = next(r["t_s"] for r in rows if r["target_c"] and r["target_c"] > 0)
    t_50 = next(r["t_s"] for r in rows if r["actual_c"] >= 50.0)
    return t_50 - t_set


def test_same_printer_seed_same_physics(tmp_path):
    """Two sessions with the same printer seed and different noise seeds are the same printer:
    the logged bed heat-up (22 -> 50 C, full power) matches the hidden physics run alone
    in both, to the report spacing."""
    a = run_demo(tmp_path / "a", printer_seed=4, seed=1, scale=100.0, tail_s=5.0)
    b = run_demo(tmp_path / "b", printer_seed=4, seed=9, scale=100.0, tail_s=5.0)
    ta = tomllib.loads(a.truth_path.read_text())
    tb = tomllib.loads(b.truth_path.read_text())
    assert ta["params"] == tb["params"]
    ph = Physics(draw_printer(4), 0.0)
    ph.target_bed_c = 60.0
    while ph.t_bed_c < 50.0:
        ph.advance_to(ph.t_s + ph.DT_S)
    for res in (a, b):
        assert _bed_rise_s(res.session.folder) == pytest.approx(ph.t_s, abs=3.0)


def test_meter_lost_mid_session_the_print_goes_on(tmp_path):
    from slicer_energy.rig.logger import SessionLogger, read_serial
    from slicer_energy.rig.marlin import connect
    from slicer_energy.rig.meters import PzemMeter
    from slicer_energy.rig.session import MeterPoller, run_session
    from slicer_energy.rig.sim.physics import SimClock
    from slicer_energy.rig.sim.printer import VirtualMeter, VirtualPrinter, demo_gcode

    clock = SimClock(200.0)
    printer = VirtualPrinter(draw_printer(5), clock).start()
    vm = VirtualMeter(printer.physics, clock, "pzem").start()
    log = SessionLogger(tmp_path, "meter-lost", clock=clock.now)
    meter = PzemMeter(vm.path, timeout_s=0.1)
    try:
        host = connect(printer.path, 115200, on_line=log.serial, clock=clock.now)
        poller = MeterPoller(meter, log, clock.now, 1.0 / 200).start()
        timer = threading.Timer(0.5, vm.stop)  # the meter's USB adapter is pulled mid-print
        timer.start()
        res = run_session(host, log, poller, gcode_lines=demo_gcode(layers=2))
        timer.join()
    finally:
        meter.close()
        vm.stop()
        printer.stop()
    assert res.status == "finished" and res.job.state == "done"
    events = [t for _ts, _w, d, t in read_serial(res.folder) if d == "#"]
    assert any(t.startswith("meter: ") for t in events)
    assert len(read_power(res.folder)) > 10  # what was measured before stays


def test_arc_length():
    from slicer_energy.rig.sim.motion import arc_length_mm

    # quarter circle of radius 10 from (10,0) to (0,10) around the origin
    ccw = arc_length_mm((10.0, 0.0), (0.0, 10.0), (-10.0, 0.0), clockwise=False)
    cw = arc_length_mm((10.0, 0.0), (0.0, 10.0), (-10.0, 0.0), clockwise=True)
    assert ccw == pytest.approx(10 * math.pi / 2)
    assert cw == pytest.approx(10 * 3 * math.pi / 2)
    assert arc_length_mm((5.0, 0.0), (5.0, 0.0), (-5.0, 0.0), clockwise=True) == pytest.approx(
        10 * math.pi
    )
