"""A parameter the session cannot determine is reported as such and keeps its prior."""

from __future__ import annotations

import sys

import pytest

from slicer_energy.calib.fit import fit_sessions
from slicer_energy.calib.inputs.session import load_session
from slicer_energy.machine import load_machine
from slicer_energy.rig.sim.demo import run_demo
from slicer_energy.rig.sim.printer import demo_gcode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(120)


def test_unheated_bed_keeps_prior_and_says_so(tmp_path):
    # a print with the bed heater never switched on: nothing in it determines the bed's R, C, P
    lines = [ln for ln in demo_gcode(layers=3) if not ln.startswith(("M140 S6", "M190", "M140 S0"))]
    r = run_demo(tmp_path, printer_seed=5, seed=1, scale=200, tail_s=60, gcode_lines=lines)
    truth = tomllib.loads(r.truth_path.read_text())["effective"]  # first-order equivalents
    base = load_machine("ender3-v2")
    fit = fit_sessions([load_session(r.session.folder)], base)
    for k in ("p_max_w", "r_k_per_w", "c_j_per_k"):
        p = fit.params[f"bed.{k}"]
        assert not p.identified, (k, p)
        assert p.value == getattr(base.bed, k)  # the prior, not a wild value
        assert any(n.startswith(f"bed.{k}: not determined") for n in fit.notes)
    # the heated hotend in the same session is determined (the test can tell them apart)
    h = fit.params["hotend.r_k_per_w"]
    assert h.identified
    eta_t = truth["electrical"]["psu_efficiency"]
    eta = fit.value("electrical.psu_efficiency")
    # above its value at the set point, as in test_calib_recovery: the hotend's power falls
    # with temperature and the fit sees it heating too (measured +6.7 %)
    err = fit.value("hotend.p_max_w") / eta / (truth["hotend"]["p_max_w"] / eta_t) - 1
    assert 0.0 < err < 0.75, err


def test_gcode_applies_calibrated_time_scale_and_wait_overhead(tmp_path):
    """A calibrated overlay's time scale stretches motion and its wait overhead lengthens
    each heater wait in the marlin timeline; PrusaSlicer emulation stays untouched."""
    from slicer_energy.gcode.analyze import analyze_file
    from slicer_energy.machine import load_machine

    gfile = tmp_path / "p.gcode"
    moves = [f"G1 X{10 + (i % 2) * 50} Y{10 + i} E{0.5 * (i + 1):.2f} F3000" for i in range(200)]
    gfile.write_text(
        "\n".join(
            [
                "M140 S60",
                "M104 S200",
                "M190 S60",
                "M109 S200",
                "G28",
                "G92 E0",
                *moves,
                "M104 S0",
                "M140 S0",
            ]
        )
        + "\n"
    )
    overlay = tmp_path / "cal.toml"
    overlay.write_text(
        '[calibration]\nbase = "prusa-mk3s"\nsource = "test"\ntime_scale = 1.1\n'
        "wait_extra_s = 30.0\n"
    )
    base = analyze_file(gfile, load_machine("prusa-mk3s"), mode="marlin")
    cal = analyze_file(gfile, load_machine(str(overlay)), mode="marlin")
    motion = base.time_by_phase_s["motion"]
    assert cal.time_by_phase_s["motion"] == pytest.approx(1.1 * motion, rel=1e-9)
    assert cal.time_by_phase_s["wait"] == pytest.approx(base.time_by_phase_s["wait"] + 60.0)
    p_base = analyze_file(gfile, load_machine("prusa-mk3s"), mode="prusa")
    p_cal = analyze_file(gfile, load_machine(str(overlay)), mode="prusa")
    assert p_cal.time_s == pytest.approx(p_base.time_s)
