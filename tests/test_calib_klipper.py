"""Heater fits from real Klipper logs (corpus power/klippy_logs)."""

from __future__ import annotations

import math

import pytest

from slicer_energy.calib.klipper import fit_heatup, heatups, read_klippy_stats
from slicer_energy.errors import CalibrationError

from conftest import CORPUS, need_shared


def test_remyjardin_bed_heatup():
    need_shared("corpus", "power", "klippy_logs")
    logs = read_klippy_stats(CORPUS / "power/klippy_logs/remyjardin_klippy.log")
    bed = logs["heater_bed"]
    (sl,) = heatups(bed)
    f = fit_heatup(bed, sl)
    assert f.rms_c < 1.5
    # corpus power/README.md: "bed 23.4 -> 60 °C in ~131 s at pwm 1.0"; the fitted model
    # at full duty must reproduce that time (independent of the fit's own residual)
    t_model = f.dead_s + f.tau_s * math.log(
        (f.t_amb_c + f.gain_k - f.from_c) / (f.t_amb_c + f.gain_k - 60.0)
    )
    assert t_model == pytest.approx(131.0, rel=0.15)
    # MK3S-class bed (RRF M303, corpus power/notes): gain 155.3 K, tau 497.5 s
    assert f.gain_k == pytest.approx(155.3, rel=0.3)
    assert f.tau_s == pytest.approx(497.5, rel=0.3)


def test_no_stats_lines(tmp_path):
    p = tmp_path / "klippy.log"
    p.write_text("Starting Klippy...\n")
    with pytest.raises(CalibrationError, match="klippy.log: no 'Stats"):
        read_klippy_stats(p)
