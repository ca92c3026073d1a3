"""The plugin's parts that do not need OctoPrint: the SQLite history (durable readings, a job
interrupted by a crash), the energy over a job window, the grid's CO2e, calibration from
recorded jobs. The plugin inside a real OctoPrint: test_octoprint_plugin.py."""

from __future__ import annotations

import sqlite3
import sys

import numpy as np
import pytest

from slicer_energy.errors import CalibrationError, SettingsError
from slicer_energy.integrations.octoprint.calibrate import calibrate_history
from slicer_energy.integrations.octoprint.estimate import grid_g_per_kwh
from slicer_energy.integrations.octoprint.store import History, window_energy_j
from slicer_energy.machine import load_machine
from slicer_energy.resources import data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_window_energy_holds_the_ends():
    # readings 10, 20, 30 W at 1, 2, 3 s; the window 0..4 s: 10 W held over 0..1, two
    # trapezoids (15 W, 25 W), 30 W held over 3..4 -> 10 + 15 + 25 + 30 J
    t, p = np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])
    assert window_energy_j(t, p, 0.0, 4.0) == pytest.approx(80.0)
    assert window_energy_j(t, p, 1.5, 2.5) == pytest.approx(20.0)  # the ramp's mean over 1 s
    assert window_energy_j(t[:0], p[:0], 0.0, 4.0) == 0.0


def test_readings_are_committed_and_a_crashed_job_is_closed_on_reopen(tmp_path):
    db = tmp_path / "history.sqlite"
    h = History(db)
    job = h.start_job("local", "a.gcode", "prusa-mk3s", 100.0, {"energy_kwh": 0.5}, None)
    for t in range(101, 111):
        h.add_reading(job, float(t), 360.0)
    # another connection (another process) sees every reading before the job ends
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 10
    del h  # OctoPrint killed mid-job: no end_job, no close
    reopened = History(db)
    (rec,) = reopened.jobs()
    assert rec["status"] == "interrupted"
    assert rec["ended_unix"] == 110.0  # its last reading
    assert rec["measured_kwh"] == pytest.approx(360.0 * 10 / 3.6e6)  # 360 W held from 100 s
    assert rec["predicted_kwh"] == 0.5
    assert reopened.jobs_csv().splitlines()[1].split(",")[6] == "interrupted"
    reopened.close()


def test_grid_from_the_lca_data_or_a_number():
    # UBA's 2023 German mix, 380 g CO2/kWh (lca/background/electricity.toml [DE])
    assert grid_g_per_kwh("DE") == pytest.approx(380.0)
    assert grid_g_per_kwh("450") == 450.0
    with pytest.raises(SettingsError, match="plugin setting grid: unknown electricity"):
        grid_g_per_kwh("Atlantis")
    with pytest.raises(SettingsError, match="plugin setting grid: '-5'"):
        grid_g_per_kwh(-5)


def test_calibrate_history_fits_a_recorded_job(example_session, tmp_path):
    missing = tmp_path / "gone"
    out = tmp_path / "cal" / "octoprint-calibrated.toml"
    out.parent.mkdir()
    report = calibrate_history([example_session, missing], "ender3-v2", out)
    assert report["skipped"][0]["session"] == str(missing)
    assert report["sessions"] == [example_session.name]
    assert report["r2"] > 0.95
    m = load_machine(out)  # the profile the plugin switches its printer setting to
    assert m.bed.p_max_w == pytest.approx(report["params"]["bed.p_max_w"]["value"], rel=1e-5)
    # against the simulator's hidden truth: the bed's full wall power P/eta
    truth = tomllib.loads((data_dir("firmware_logs") / f"{example_session.name}.sim_truth.toml")
                          .read_text())["params"]  # fmt: skip
    p = {k: v["value"] for k, v in report["params"].items()}
    wall = truth["bed"]["p_max_w"] / truth["electrical"]["psu_efficiency"]
    assert p["bed.p_max_w"] / p["electrical.psu_efficiency"] == pytest.approx(wall, rel=0.1)


def test_calibrate_history_needs_a_usable_job(tmp_path):
    with pytest.raises(CalibrationError, match=r"no usable job .*0 recorded"):
        calibrate_history([], "ender3-v2", tmp_path / "p.toml")
