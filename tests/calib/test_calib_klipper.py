"""Heater fits from real Klipper logs (corpus power/klippy_logs)."""

from __future__ import annotations

import math

import pytest

from slicer_energy.calib.inputs.klipper import read_klippy_stats
from slicer_energy.calib.klipper import fit_heatup, heatups
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


def test_bare_power_trace_reader_matches_the_files_own_counter():
    """Ender-3 PZEM-017 trace: our integral of W over the Delta Time column against the
    file's cumulative Wh column (the logger's own counter) and the README's totals."""
    import csv

    from slicer_energy.calib.inputs.trace import job_window, read_power_trace

    p = need_shared("corpus", "power", "ender3_pzem017", "raw_baseline_l3.csv")
    tr = read_power_trace(p)
    with p.open() as f:
        last = list(csv.reader(f))[-1]
    assert tr.energy_j() / 3600 == pytest.approx(float(last[-1]), rel=0.01)
    assert tr.energy_j() / 3600 == pytest.approx(143.4, rel=0.01)  # corpus power/README.md
    a, b = job_window(tr)
    assert a < 60 and (b - a) / 60 == pytest.approx(108.8, abs=2.0)
