"""Parameters a plain print cannot separate, determined once the session contains what
separates them: steppers held standing vs moving (a dwell after homing, fan off, and one with
the fan on) and the hotend's filament heating (extrusion placed when it executes)."""

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

pytestmark = pytest.mark.timeout(180)


def test_standstill_and_extrusion_separate_steppers_and_filament_heating(tmp_path):
    lines = demo_gcode(layers=6, size_mm=25.0)
    i = lines.index("G28")
    lines = [*lines[: i + 1], "G4 S60", *lines[i + 1 :]]  # steppers held, fan off
    j = lines.index("M106 S255")
    lines = [*lines[: j + 1], "G4 S60", *lines[j + 1 :]]  # steppers held, fan on
    r = run_demo(tmp_path, printer_seed=3, seed=13, scale=50.0, tail_s=300, gcode_lines=lines)
    truth = tomllib.loads(r.truth_path.read_text())["effective"]  # first-order equivalents
    el = truth["electrical"]
    fit = fit_sessions(
        [load_session(r.session.folder)],
        load_machine("ender3-v2"),
        fix={"electrical.psu_efficiency": el["psu_efficiency"]},
    )
    for k in ("p_steppers_enabled_w", "p_steppers_moving_w"):
        assert fit.params[f"electrical.{k}"].identified, k
    # Against the simulator's richer physics (rig/sim/truth.py) only the moving share keeps
    # its accuracy: measured −1.8 % (seeds 1/2: −1.2/−0.7 %).
    mv = fit.params["electrical.p_steppers_moving_w"]
    assert mv.value == pytest.approx(el["p_steppers_moving_w"], rel=0.08)
    # The standing share comes out low and the filament's c_p high (seeds 3/1/2: enabled
    # −33/−36/−14 %, c_p +59/+55/+36 %; the simulator heats PLA with 1.8 J/(g·K)): the
    # dwells sit at a light load where the supply is least efficient, and the hotend's
    # power and loss change with temperature where the fit has constants, so neither is a
    # measurement of the truth any more. Pinned as a bias, so a change in either shows.
    en = fit.params["electrical.p_steppers_enabled_w"]
    assert -0.45 < en.value / el["p_steppers_enabled_w"] - 1 < 0.0
    cp = fit.params["filament.cp_j_per_gk"]
    assert cp.identified
    assert 0.0 < cp.value / 1.8 - 1 < 0.80
