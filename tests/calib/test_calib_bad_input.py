"""Bad sessions are rejected with a message naming the file and what is wrong.

Each case starts from the real example session in ``firmware_logs/`` (recorded by
``rig demo``) and breaks one thing in a copy.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from slicer_energy.calib.inputs.session import load_session, require_heater_output
from slicer_energy.cli import main
from slicer_energy.errors import CalibrationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_example_session_loads(example_session):
    s = load_session(example_session)
    assert s.job_t1_s > s.job_t0_s
    assert {"hotend", "bed"} <= set(s.heaters)
    assert s.gcode_lines[0].startswith("M140") or any(ln.startswith("M190") for ln in s.gcode_lines)
    # the summary the logger wrote integrates the same samples as we do (trapezoid)
    e = s.energy_j(s.power_t_s[0], s.power_t_s[-1]) / 3.6e6
    summary = tomllib.loads((example_session / "summary.toml").read_text())
    assert e == pytest.approx(summary["energy_kwh"], rel=1e-3)


@pytest.mark.parametrize("name", ["power.csv", "temps.csv", "serial.log", "meta.toml"])
def test_missing_file(example_session, name):
    (example_session / name).unlink()
    with pytest.raises(CalibrationError, match=rf"{name}: missing"):
        load_session(example_session)


def test_corrupt_power_csv(example_session):
    p = example_session / "power.csv"
    lines = p.read_text().splitlines()
    garbled = [lines[0]] + [ln.replace(".", "#") for ln in lines[1:]]
    p.write_text("\n".join(garbled) + "\n")
    with pytest.raises(CalibrationError, match=r"power\.csv: .*not numbers.*corrupt"):
        load_session(example_session)


def test_binary_garbage(example_session):
    (example_session / "temps.csv").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(CalibrationError, match=r"temps\.csv"):
        load_session(example_session)


def test_corrupt_meta(example_session):
    (example_session / "meta.toml").write_text("[example_session\nlabel = ")
    with pytest.raises(CalibrationError, match=r"meta\.toml: not valid TOML"):
        load_session(example_session)


def test_non_monotonic_timestamps(example_session):
    p = example_session / "power.csv"
    lines = p.read_text().splitlines()
    lines[50], lines[60] = lines[60], lines[50]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(CalibrationError, match=r"power\.csv: t_s goes backwards at data row"):
        load_session(example_session)


def test_meter_trace_not_overlapping_the_print(example_session):
    p = example_session / "power.csv"
    lines = p.read_text().splitlines()
    out = [lines[0]]
    for ln in lines[1:]:
        t, rest = ln.split(",", 1)
        out.append(f"{float(t) + 5000.0:.4f},{rest}")
    p.write_text("\n".join(out) + "\n")
    with pytest.raises(CalibrationError, match=r"power\.csv: meter trace .* does not cover"):
        load_session(example_session)


def test_cli_prints_one_line_and_exits_2(example_session, capsys):
    (example_session / "power.csv").unlink()
    rc = main(["calibrate", str(example_session)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "power.csv: missing" in err and len(err.strip().splitlines()) == 1


def test_not_a_folder(tmp_path):
    with pytest.raises(CalibrationError, match="not a session folder"):
        load_session(tmp_path / "nope")


@pytest.mark.parametrize("name", ["temps.csv", "power.csv"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_time_is_a_damaged_row_not_a_fit_crash(
    example_session, tmp_path, capsys, name, value
):
    """Found by the fuzz suite: ``nan`` as the first ``t_s`` of temps.csv reached
    ``least_squares`` ("Residuals are not finite" traceback). A non-finite number is a damaged
    row like an unreadable one: skipped and counted, and the fit runs on the rest."""
    p = example_session / name
    lines = p.read_text().splitlines()
    head, first = lines[0], lines[1].split(",")
    first[0] = value
    p.write_text("\n".join([head, ",".join(first), *lines[2:]]) + "\n")
    s = load_session(example_session)
    assert all(np.isfinite(s.power_t_s)) and all(np.isfinite(s.heaters["hotend"].t_s))
    rc = main(["calibrate", str(example_session), "--out", str(tmp_path / "c.toml"), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Traceback" not in out.err


@pytest.mark.parametrize("value", ["nan", ""])
def test_a_missing_heater_duty_holds_the_one_before(example_session, tmp_path, capsys, value):
    """Found by the long fuzz run: ``nan`` as the first ``pwm_raw`` of temps.csv made the
    power model NaN everywhere ("Residuals are not finite" traceback). A report without a duty
    holds the neighbouring one."""
    p = example_session / "temps.csv"
    lines = p.read_text().splitlines()
    cols = lines[0].split(",")
    first = lines[1].split(",")
    first[cols.index("pwm_raw")] = value
    p.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    rc = main(["calibrate", str(example_session), "--out", str(tmp_path / "c.toml"), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Traceback" not in out.err


def test_no_heater_output_at_all_is_one_line_not_a_fit_crash(example_session, tmp_path, capsys):
    """Found by the OctoPrint plugin's tests: a firmware whose temperature reports carry no
    heater output (no ``@:``; OctoPrint's Virtual Printer) gave a session with every duty NaN,
    and the fit crashed in scipy ("Residuals are not finite"). It is one line naming the file
    and what is missing."""
    p = example_session / "temps.csv"
    lines = p.read_text().splitlines()
    i = lines[0].split(",").index("pwm_raw")
    rows = [r.split(",") for r in lines[1:]]
    for r in rows:
        r[i] = ""
    p.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    s = load_session(example_session)  # loads: the job window and energy need no duty
    with pytest.raises(CalibrationError, match=r"temps\.csv: no heater output .*hotend"):
        require_heater_output(s)
    rc = main(["calibrate", str(example_session), "--out", str(tmp_path / "c.toml")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
