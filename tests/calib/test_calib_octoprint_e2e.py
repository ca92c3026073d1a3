"""End to end: calibrate from an OctoPrint serial.log and a smart-plug CSV alone.

A real OctoPrint (``MachineCom``) printed on our virtual printer while our virtual meter
read its wall power every second (``test_calib_octoprint_rig.py``). The readings are exported
as Home Assistant's history CSV from a plug whose clock runs ahead of the host's by a known
amount, with a 20 s stretch where the plug was unavailable. ``slicer-energy calibrate``
gets only the two files and the G-code.

Bands are the rig recovery test's (``test_calib_recovery.assert_wall_meter_equivalents``, on
what a wall meter determines: heater wall power P/η, steady rise P·R, time constant R·C, base
power/η, against the simulator's first-order equivalents): the OctoPrint + plug inputs must
give the fit the same streams a rig session does, so the fit must do as well from them as it
does from a session. What differs: temperatures every 2 s
(OctoPrint's M155 interval) instead of 1 s, HA dropping unchanged readings, the gap, and the
clock offset, which must be recovered within 2 s.
"""

from __future__ import annotations

import json

import pytest
from test_calib_octoprint_rig import shared_recording, write_home_assistant_csv
from test_calib_recovery import assert_wall_meter_equivalents

from slicer_energy.calib.inputs.octoprint import load_octoprint_session
from slicer_energy.cli import main
from slicer_energy.machine import load_machine

OFFSET_S = -93.7  # the plug's clock is 93.7 s behind the host's


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return shared_recording(tmp_path_factory)


@pytest.fixture(scope="module")
def plug_csv(rec, tmp_path_factory):
    p = tmp_path_factory.mktemp("plug") / "history.csv"
    gap = (rec.meter[300][0], rec.meter[320][0])
    write_home_assistant_csv(p, rec.meter, OFFSET_S, unavailable=gap)
    return p


def _rel(a: float, b: float) -> float:
    return abs(a / b - 1.0)


def test_session_streams_and_clock(rec, plug_csv):
    s, est = load_octoprint_session(rec.serial_log, plug_csv, gcode=rec.gcode)
    assert abs(est.offset_s - OFFSET_S) <= 2.0, est.as_dict()
    assert abs(est.offset_s - OFFSET_S) <= 3 * est.stderr_s
    # on the host clock, the meter's energy over the job equals the virtual meter's true
    # energy over the same host-time window (the plug's readings, moved by the estimate)
    t0 = s.meta["octoprint"]["t_origin_unix_s"]
    true = rec.true_energy_j
    from test_calib_octoprint_rig import EPOCH0

    def true_e(t_host):
        import numpy as np

        tt = np.array([a for a, _e in true]) + EPOCH0
        ee = np.array([e for _a, e in true])
        return float(np.interp(t_host, tt, ee))

    e_true = true_e(s.job_t1_s + t0) - true_e(s.job_t0_s + t0)

    # the window's ends sit on the host clock, the readings on the plug's: an offset error
    # of d seconds moves d x (power at each end) into or out of the window. The estimate's
    # own 3-sigma bound on d (checked above) times the true power at the ends, plus 1 %.
    def power_w(t_host: float) -> float:
        return (true_e(t_host + 1.0) - true_e(t_host - 1.0)) / 2.0

    edges_w = power_w(s.job_t0_s + t0) + power_w(s.job_t1_s + t0)
    # the plug's export has a deliberate gap (checked below): what the printer drew while the
    # plug reported nothing is not in the trace, so both sides are compared outside it
    gaps = [
        (max(a, s.job_t0_s), min(b, s.job_t1_s))
        for a, b in s.meta["plug"]["gaps"]
        if b > s.job_t0_s and a < s.job_t1_s
    ]
    e_true -= sum(true_e(b + t0) - true_e(a + t0) for a, b in gaps)
    e_seen = s.job_energy_j - sum(s.energy_j(a, b) for a, b in gaps)
    tol_j = 0.01 * e_true + 3 * est.stderr_s * edges_w
    assert abs(e_seen - e_true) < tol_j, (e_seen, e_true, tol_j)
    assert s.duty_known and {"hotend", "bed"} <= set(s.heaters)
    assert len(s.meta["plug"]["gaps"]) == 1
    assert s.print_t0_s is not None and s.job_t0_s < s.print_t0_s < s.job_t1_s


def test_calibrate_cli_from_serial_log_and_plug_csv(rec, plug_csv, tmp_path, capsys):
    out = tmp_path / "plug-cal.toml"
    rc = main(
        [
            "calibrate",
            "--octoprint-log",
            str(rec.serial_log),
            "--plug-csv",
            str(plug_csv),
            "--gcode",
            str(rec.gcode),
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    cap = capsys.readouterr()
    js = json.loads(cap.out)
    assert "clock: " in cap.err and "meter − host -9" in cap.err
    assert "gap" in cap.err  # the unavailable stretch is reported, not filled
    v = {k: p["value"] for k, p in js["params"].items()}
    assert_wall_meter_equivalents(v, rec.params.effective())  # the demo part's 210/60 °C
    for h in ("hotend", "bed"):
        assert js["params"][f"{h}.p_max_w"]["identified"]
    assert js["fit"]["r2"] > 0.99
    assert js["profile"] == str(out)
    m = load_machine(out)
    assert m.bed.p_max_w == pytest.approx(v["bed.p_max_w"], rel=1e-5)


def test_cli_rejects_a_plug_trace_from_another_day(rec, tmp_path, capsys):
    p = tmp_path / "yesterday.csv"
    write_home_assistant_csv(p, rec.meter, -86400.0)
    rc = main(["calibrate", "--octoprint-log", str(rec.serial_log), "--plug-csv", str(p)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "yesterday.csv" in err and "do not overlap" in err


def test_cli_rejects_the_wrong_gcode(rec, plug_csv, tmp_path, capsys):
    g = tmp_path / "other.gcode"
    g.write_text(rec.gcode.read_text().replace("M190 S60", "M190 S70"))
    rc = main(
        ["calibrate", "--octoprint-log", str(rec.serial_log), "--plug-csv", str(plug_csv),
         "--gcode", str(g)]
    )  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "other.gcode: is not the file job #1" in err and "M190 S70" in err


def test_cli_needs_some_input(capsys):
    assert main(["calibrate"]) == 2
    assert "nothing to calibrate from" in capsys.readouterr().err
    assert main(["calibrate", "--octoprint-log", "a.log"]) == 2
    assert "--plug-csv" in capsys.readouterr().err
