"""Reading OctoPrint's ``serial.log``.

The main input is a log written by a real OctoPrint (``MachineCom`` with its own SERIAL
logger and format) printing on our virtual printer (``test_calib_octoprint_rig.py``): the
job's lines are checked against the G-code file OctoPrint was given, timings against the
protocol (each ``ok`` after its line; M190 acknowledged only once the bed is at temperature).
The log variants OctoPrint writes in other situations (M105 polling, cancel, connection lost,
reconnect, several extruders, firmware without heater output) are short excerpts in the
same record format.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_calib_octoprint_rig import shared_recording

from slicer_energy.calib.inputs.octoprint import HOST_COMMANDS, read_octoprint_log
from slicer_energy.errors import CalibrationError
from slicer_energy.rig.marlin import job_command

from conftest import need_shared

TEMP_WINDOW_C = 1.0  # the virtual printer's M190/M109 window (rig/sim/printer.py TEMP_WINDOW_C)


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return shared_recording(tmp_path_factory)


def test_job_lines_are_the_printed_file(rec):
    log = read_octoprint_log(rec.serial_log)
    assert [j.status for j in log.jobs] == ["done"]
    job = log.job()
    want = [c for c in (job_command(x) for x in rec.gcode.read_text().splitlines()) if c]
    assert job.lines == want  # each line once, although three were sent twice
    assert job.resends == 3
    assert log.connections == 1
    assert "virtual printer" in log.firmware
    text = rec.serial_log.read_text()
    assert text.count("Resend:") == 3
    # OctoPrint's own commands during the job are not part of it
    assert not {ln.split()[0] for ln in job.lines} & HOST_COMMANDS


def test_line_timing_follows_the_protocol(rec):
    log = read_octoprint_log(rec.serial_log)
    job = log.job()
    sent = np.array([a for a, _b in job.line_t_s])
    acked = np.array([b for _a, b in job.line_t_s])
    assert np.all(acked >= sent)
    assert np.all(np.diff(sent) >= 0) and np.all(acked[:-1] <= sent[1:] + 1e-9)  # ping-pong
    assert job.t0_s <= sent[0] and acked[-1] <= job.t1_s
    # M190 S60 is acknowledged once the bed reached 60 °C (the firmware waits), so the bed
    # report just before its ok is within the window, and the one at its send far below
    i = job.lines.index("M190 S60")
    bed = log.temps["bed"]
    before_ok = bed[bed[:, 0] <= acked[i]][-1]
    at_send = bed[bed[:, 0] <= sent[i] + 1.0][-1]
    assert before_ok[1] >= 60.0 - TEMP_WINDOW_C - 0.5, before_ok
    assert at_send[1] < 40.0 and at_send[2] == 60.0
    assert acked[i] - sent[i] > 60.0  # a real heat-up, not an immediate ok
    # a resent line is timed from its resend: nothing takes the rejected copy's ok
    assert sorted(acked - sent)[len(acked) // 2] < 2.0


def test_temperature_reports(rec):
    log = read_octoprint_log(rec.serial_log)
    n_reports = sum(
        1 for ln in rec.serial_log.read_text().splitlines() if " - Recv: " in ln and " T:" in ln
    )
    assert log.temps["hotend"].shape[0] == n_reports == log.temps["bed"].shape[0]
    assert log.pwm_known
    h = log.temps["hotend"]
    assert np.nanmax(h[:, 3]) == 127  # the firmware's @: at full power (0..127 scale)
    assert h[:, 2].max() == 210.0 and h[:, 1].max() > 205.0


def _write(tmp_path, lines, name="serial.log"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


_CONNECT = [
    '2026-05-01 10:00:00,000 - Changing monitoring state from "Offline" to "Opening serial connection"',  # noqa: E501
    "2026-05-01 10:00:00,050 - Connected to: Serial<id=0x7f, open=True>(port='/dev/ttyUSB0', "
    "baudrate=115200), starting monitor",
    '2026-05-01 10:00:00,100 - Changing monitoring state from "Connecting" to "Operational"',
]


def _job(t0: int, body: list[str], end: list[str]) -> list[str]:
    head = [
        f'2026-05-01 10:{t0:02d}:00,000 - Changing monitoring state from "Operational" to "Starting"',  # noqa: E501
        f"2026-05-01 10:{t0:02d}:00,010 - Send: N0 M110 N0*125",
        f"2026-05-01 10:{t0:02d}:00,020 - Recv: ok",
        f'2026-05-01 10:{t0:02d}:00,030 - Changing monitoring state from "Starting" to "Printing"',
    ]
    return head + body + end


def test_variants_m105_polling_cancel_reconnect_multi_extruder(tmp_path):
    """OctoPrint polling M105 (firmware without auto-report answers ``ok T:..``), two hotends
    (``T0:``/``T1:``, ``@0:``), a cancelled job, a lost connection, a reconnect, a done job."""
    cancelled = _job(
        1,
        [
            "2026-05-01 10:01:01,000 - Send: N1 M140 S60*99",
            "2026-05-01 10:01:01,020 - Recv: ok",
            "2026-05-01 10:01:02,000 - Send: N2 M105*19",
            "2026-05-01 10:01:02,030 - Recv: ok T0:25.0 /0.0 T1:24.0 /0.0 B:30.0 /60.0 @0:0 @1:0 B@:127",  # noqa: E501
            "2026-05-01 10:01:03,000 - Send: N3 G28*18",
            '2026-05-01 10:01:04,000 - Changing monitoring state from "Printing" to "Cancelling"',
            "2026-05-01 10:01:05,000 - Recv: ok",
        ],
        ['2026-05-01 10:01:06,000 - Changing monitoring state from "Cancelling" to "Operational"'],
    )
    lost = _job(
        2,
        ["2026-05-01 10:02:01,000 - Send: N1 G28*18"],
        [
            "2026-05-01 10:02:05,000 - Unexpected error while reading from serial port: "
            "SerialException: 'device reports readiness to read but returned no data'",
            '2026-05-01 10:02:05,010 - Changing monitoring state from "Printing" to "Offline after error"',  # noqa: E501
            "2026-05-01 10:02:05,020 - Connection closed, closing down monitor",
        ],
    )
    reconnect = [ln.replace("10:00:00", "10:03:00") for ln in _CONNECT]
    done = _job(
        4,
        [
            "2026-05-01 10:04:01,000 - Send: N1 M104 S200*36",
            "2026-05-01 10:04:01,010 - Recv: ok",
            "2026-05-01 10:04:02,000 - Send: N2 M105*19",
            "2026-05-01 10:04:02,050 - Recv: ok T0:150.0 /200.0 T1:24.0 /0.0 B:30.0 /0.0 @0:127 @1:0 B@:0",  # noqa: E501
            "2026-05-01 10:04:03,000 - Send: N3 G1 X10 Y10 E1 F1200*80",
            "2026-05-01 10:04:03,500 - Recv: ok",
            '2026-05-01 10:04:04,000 - Changing monitoring state from "Printing" to "Finishing"',
            "2026-05-01 10:04:04,100 - Send: N4 M400*30",
            "2026-05-01 10:04:04,200 - Recv: ok",
        ],
        ['2026-05-01 10:04:04,300 - Changing monitoring state from "Finishing" to "Operational"'],
    )
    p = _write(tmp_path, _CONNECT + cancelled + lost + reconnect + done)
    log = read_octoprint_log(p, naive_tz="UTC")
    assert [(j.status, j.lines) for j in log.jobs] == [
        ("cancelled", ["M140 S60", "G28"]),
        ("failed", ["G28"]),
        ("done", ["M104 S200", "G1 X10 Y10 E1 F1200"]),  # M400: OctoPrint's, when finishing
    ]
    assert log.connections == 2
    assert log.job() is log.jobs[2]  # default: the last completed job
    done_job = log.jobs[2]
    # the M105 in between took its own ok, so the move got the ok 0.5 s after it was sent
    assert done_job.line_t_s[1][1] - done_job.line_t_s[1][0] == pytest.approx(0.5)
    hot = log.temps["hotend"]
    np.testing.assert_allclose(hot[:, 1:], [[25.0, 0.0, 0.0], [150.0, 200.0, 127.0]])
    t_utc = 1777629600.0  # 2026-05-01 10:00:00 UTC
    assert log.t_first_s == t_utc
    assert hot[1, 0] == pytest.approx(t_utc + 4 * 60 + 2.05)
    with pytest.raises(CalibrationError, match=r"serial\.log: job 9 does not exist.*#1 "):
        log.job(9)


def test_firmware_without_heater_output(tmp_path):
    body = [
        "2026-05-01 10:01:01,000 - Send: N1 M140 S60*99",
        "2026-05-01 10:01:01,020 - Recv: ok",
        "2026-05-01 10:01:03,000 - Recv:  T:25.0 /0.0 B:31.5 /60.0",
    ]
    p = _write(tmp_path, _CONNECT + _job(1, body, []))
    log = read_octoprint_log(p)
    assert not log.pwm_known and np.isnan(log.temps["bed"][0, 3])
    assert log.jobs[0].status == "unfinished"
    with pytest.raises(CalibrationError, match=r"serial\.log: no completed job \(#1 .*unfinished"):
        log.job()


def test_bad_logs_are_rejected_naming_the_file(tmp_path):
    with pytest.raises(CalibrationError, match=r"nope\.log: OctoPrint serial\.log not found"):
        read_octoprint_log(tmp_path / "nope.log")
    p = _write(tmp_path, ["Connecting...", "start", "Printer is now online."], "pronterface.log")
    with pytest.raises(CalibrationError, match=r"pronterface\.log: no 'YYYY-MM-DD"):
        read_octoprint_log(p)
    back = _CONNECT + ["2026-05-01 09:59:00,000 - Recv: ok"]
    with pytest.raises(CalibrationError, match=r"serial\.log: record 4 goes back in time"):
        read_octoprint_log(_write(tmp_path, back))
    with pytest.raises(CalibrationError, match=r"serial\.log: no print job in the log"):
        read_octoprint_log(_write(tmp_path, _CONNECT)).job()


@pytest.mark.parametrize("extra_ok", [True, False])
def test_resend_with_and_without_the_firmwares_extra_ok(tmp_path, extra_ok):
    """Marlin answers a rejected line with ``Resend: N`` and an ``ok`` (as the virtual printer
    does above); other firmware sends no ``ok``. Either way each line gets its own ``ok``."""
    body = [
        "2026-05-01 10:01:01,000 - Send: N1 G28*18",
        "2026-05-01 10:01:05,000 - Recv: ok",
        "2026-05-01 10:01:05,100 - Send: N2 G1 X5*99",
        "2026-05-01 10:01:05,150 - Recv: Error:checksum mismatch, Last Line: 1",
        "2026-05-01 10:01:05,160 - Recv: Resend: 2",
    ]
    if extra_ok:
        body.append("2026-05-01 10:01:05,170 - Recv: ok")
    body += [
        "2026-05-01 10:01:05,200 - Send: N2 G1 X5*99",
        "2026-05-01 10:01:05,700 - Recv: ok",
        "2026-05-01 10:01:05,800 - Send: N3 G1 X9*99",
        "2026-05-01 10:01:06,800 - Recv: ok",
    ]
    p = _write(tmp_path, _CONNECT + _job(1, body, []))
    job = read_octoprint_log(p, naive_tz="UTC").jobs[0]
    assert job.lines == ["G28", "G1 X5", "G1 X9"] and job.resends == 1
    took = [round(b - a, 3) for a, b in job.line_t_s]
    assert took == [4.0, 0.5, 1.0]


def test_prusa_style_temperature_answer(tmp_path):
    """Prusa firmware answers M105 with ``T:`` and ``T0:``, heater outputs and its PINDA
    (``P:``) and ambient (``A:``) sensors, which have no set point and are not heaters."""
    body = [
        "2026-05-01 10:01:01,000 - Send: M105",
        "2026-05-01 10:01:01,400 - Recv: ok T:215.0 /215.0 B:60.1 /60.0 T0:215.0 /215.0 @:40 "
        "B@:10 P:30.0 A:30.5",
    ]
    p = _write(tmp_path, _CONNECT + _job(1, body, []))
    log = read_octoprint_log(p, naive_tz="UTC")
    np.testing.assert_allclose(log.temps["hotend"][0, 1:], [215.0, 215.0, 40.0])
    np.testing.assert_allclose(log.temps["bed"][0, 1:], [60.1, 60.0, 10.0])
    assert log.jobs[0].lines == []  # M105 is OctoPrint's polling, not the job


@pytest.mark.parametrize(
    "name", ["guidugast_pronterface.log", "guidugast_low_temp_test_pronterface.log"]
)
def test_real_marlin_temperature_lines(tmp_path, name):
    """Temperature lines a real Marlin 1.1.9 sent (corpus Pronterface logs: ``ok T:..`` and
    M109/M190 wait reports `` T:.. W:?``), as OctoPrint logs what it receives
    (``Recv: `` + the line). Checked against the numbers read off each line by position."""
    src = need_shared("corpus", "serial", name)
    real = [ln.rstrip("\n") for ln in src.open(errors="replace") if "T:" in ln]
    assert len(real) >= 12
    recs = [f"2026-05-01 10:01:{10 + i // 10:02d},{(i % 10) * 100:03d} - Recv: {ln}"
            for i, ln in enumerate(real)]  # fmt: skip
    log = read_octoprint_log(_write(tmp_path, _CONNECT + recs), naive_tz="UTC")
    for k, ln in enumerate(real):
        tok = ln.replace("ok ", "").split()
        want_hot = [float(tok[0][2:]), float(tok[1][1:]), float(tok[4][2:])]
        want_bed = [float(tok[2][2:]), float(tok[3][1:]), float(tok[5][3:])]
        np.testing.assert_allclose(log.temps["hotend"][k, 1:], want_hot)
        np.testing.assert_allclose(log.temps["bed"][k, 1:], want_bed)
