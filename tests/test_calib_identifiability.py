"""A parameter the session cannot determine is reported as such and keeps its prior."""

from __future__ import annotations

import sys

import pytest

from slicer_energy.calib.fit import fit_sessions
from slicer_energy.calib.session import load_session
from slicer_energy.machine import load_machine
from slicer_energy.rig.demo import run_demo
from slicer_energy.rig.sim import demo_gcode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(120)


def test_unheated_bed_keeps_prior_and_says_so(tmp_path):
    # a print with the bed heater never switched on: nothing in it determines the bed's R, C, P
    lines = [ln for ln in demo_gcode(layers=3) if not ln.startswith(("M140 S6", "M190", "M140 S0"))]
    r = run_demo(tmp_path, printer_seed=5, seed=1, scale=200, tail_s=60, gcode_lines=lines)
    truth = tomllib.loads(r.truth_path.read_text())["params"]
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
    assert fit.value("hotend.p_max_w") / eta == pytest.approx(
        truth["hotend"]["p_max_w"] / eta_t, rel=0.05
    )
