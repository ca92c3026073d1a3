"""The ``rig`` command line: demo, simulate + log end to end in subprocesses, Ctrl-C."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from slicer_energy.cli import main
from slicer_energy.rig.logger import read_meta, read_power, read_serial
from slicer_energy.rig.sim.printer import demo_gcode

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(120)
CLI = [sys.executable, "-m", "slicer_energy.cli"]


def _log_args(printer_path: str, out, *extra: str) -> list[str]:
    """``rig log`` on a printer at 115200 baud into ``out``, plus ``extra``."""
    return ["rig", "log", "--port", printer_path, "--baud", "115200", "--out", str(out), *extra]


def test_demo_json(tmp_path, capsys):
    rc = main(
        [
            "rig",
            "demo",
            "--out",
            str(tmp_path),
            "--printer-seed",
            "3",
            "--seed",
            "1",
            "--scale",
            "300",
            "--tail",
            "5",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished"
    folder = tmp_path / os.path.basename(out["session"])
    for name in ("serial.log", "power.csv", "temps.csv", "meta.toml", "summary.toml"):
        assert (folder / name).is_file(), name
    truth = tomllib.loads((tmp_path / (folder.name + ".sim_truth.toml")).read_text())
    assert truth["printer_seed"] == 3
    assert out["summary"]["energy_kwh"] == pytest.approx(
        truth["true_energy_kwh_metered_window"], rel=0.02
    )


def test_ports_json(capsys):
    assert main(["rig", "ports", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    assert all("port" in r and "description" in r for r in rows)


def test_bad_meter_spec_is_one_line_error(tmp_path, capsys):
    rc = main(["rig", "log", "--port", "/dev/null", "--meter", "watts:x", "--out", str(tmp_path)])
    assert rc == 2
    assert "expected KIND" in capsys.readouterr().err


def _stop(sim: subprocess.Popen) -> None:
    """Ctrl-C the simulator; never leave it running, even when it does not stop in time."""
    sim.send_signal(signal.SIGINT)
    try:
        sim.wait(60)  # generous: a loaded 2-core CI machine stops slowly
    except subprocess.TimeoutExpired:
        sim.kill()
        sim.wait()
        raise


@pytest.fixture
def simulate():
    """Start ``rig simulate`` at a time scale; teardown stops every one still running, also
    when the test failed before its own ``_stop``."""
    procs = []

    def start(scale: float):
        proc = subprocess.Popen(
            [*CLI, "rig", "simulate", "--json", "--scale", str(scale), "--printer-seed", "2"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc, json.loads(proc.stdout.readline())

    yield start
    for proc in procs:
        if proc.poll() is None:
            _stop(proc)
        proc.stdout.close()


def _log_then_stop(sim, info, out, *extra: str, timeout_s: float):
    """``rig log`` on the printer and meter of a running ``rig simulate``, which is stopped
    after it (also when the log fails or times out)."""
    try:
        return subprocess.run(
            [*CLI, *_log_args(info["printer"], out, "--meter", f"pzem:{info['meter']}", *extra)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    finally:
        _stop(sim)


def test_simulate_then_log_a_print(tmp_path, simulate):
    sim, info = simulate(50.0)
    assert info["meter_kind"] == "pzem" and info["printer"].startswith("/dev/")
    gfile = tmp_path / "part.gcode"
    gfile.write_text("\n".join(demo_gcode(layers=2)) + "\n")
    run = _log_then_stop(
        sim,
        info,
        tmp_path / "logs",
        *("--gcode", str(gfile), "--tail", "0.5", "--meter-interval", "0.1", "--quiet"),
        timeout_s=90,
    )
    assert run.returncode == 0, run.stderr
    assert "status:  finished" in run.stdout
    (folder,) = (tmp_path / "logs").iterdir()
    meta = read_meta(folder)
    assert meta["gcode"]["lines"] == len(demo_gcode(layers=2))
    assert len(meta["gcode"]["sha256"]) == 64
    assert meta["capabilities"]["AUTOREPORT_TEMP"] is True
    assert len(read_power(folder)) > 5
    assert (folder / "summary.toml").is_file()
    assert sim.returncode == 0


def test_ctrl_c_during_a_print_keeps_the_log(tmp_path, simulate):
    sim, info = simulate(1.0)  # real time: the print is still heating when we interrupt
    gfile = tmp_path / "part.gcode"
    gfile.write_text("\n".join(demo_gcode(layers=2)) + "\n")
    log = subprocess.Popen(
        [
            *CLI,
            *_log_args(info["printer"], tmp_path / "logs", "--meter", f"pzem:{info['meter']}"),
            *("--gcode", str(gfile), "--quiet"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3.0)
        log.send_signal(signal.SIGINT)
        out, err = log.communicate(timeout=30)
    finally:
        if log.poll() is None:
            log.kill()
        _stop(sim)
    assert log.returncode == 130, err
    (folder,) = (tmp_path / "logs").iterdir()
    assert read_meta(folder)["session"]["status"] == "interrupted"
    rows = read_serial(folder)
    sent = [t for _ts, _w, d, t in rows if d == ">"]
    assert any("M190 S60" in t for t in sent)
    # the cancel switched the heaters off
    assert any(t.endswith(("M140 S0", "M104 S0")) or " M140 S0*" in t for t in sent)
    assert len(read_power(folder)) >= 1


def test_log_attach_listens_without_reset(tmp_path, simulate):
    sim, info = simulate(20.0)
    run = _log_then_stop(
        sim, info, tmp_path, "--attach", "--duration", "1.5", "--quiet", timeout_s=60
    )
    assert run.returncode == 0, run.stderr
    assert "resets most Arduino-Mega" in run.stderr
    (folder,) = tmp_path.iterdir()
    assert read_meta(folder)["printer"]["attach"] is True
    sent = [t for _ts, _w, d, t in read_serial(folder) if d == ">"]
    assert sent and "M110 N0" not in sent and set(sent) <= {"M105", "M27"}


# ------------------------------------------------------------------ refusals and meter health


@pytest.fixture
def vprinter():
    from slicer_energy.rig.sim.physics import SimClock, draw_printer
    from slicer_energy.rig.sim.printer import VirtualPrinter

    p = VirtualPrinter(draw_printer(4), SimClock(400.0)).start()
    yield p
    p.stop()


def test_log_refuses_a_binary_print_file_before_sending_anything(vprinter, tmp_path, capsys):
    rng = random.Random(14)
    junk = tmp_path / "junk.gcode"
    junk.write_bytes(b"\n".join(bytes(rng.randrange(256) for _ in range(40)) for _ in range(132)))
    rc = main(_log_args(vprinter.path, tmp_path / "logs", "--no-meter", "--gcode", str(junk)))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and str(junk) in err and "text" in err
    time.sleep(0.2)
    assert vprinter.received == [] and vprinter.last_n == 0
    assert not (tmp_path / "logs").exists()


def test_second_log_on_a_busy_port_is_refused(vprinter, tmp_path, capsys):
    from slicer_energy.rig.marlin import open_serial

    first = open_serial(vprinter.path, 115200)  # the first `rig log`, mid-print
    try:
        rc = main(_log_args(vprinter.path, tmp_path / "logs", "--no-meter", "--duration", "1"))
    finally:
        first.close()
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and vprinter.path in err and "in use" in err
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    "bad",
    [
        ["--baud", "0"],
        ["--baud", "-115200"],
        ["--tail", "-1"],
        ["--duration", "nan"],
        ["--duration", "-5"],
        ["--meter-interval", "inf"],
        ["--meter-timeout", "0"],
        ["--temp-interval", "nan"],
    ],
    ids=lambda a: " ".join(a),
)
def test_log_option_values_are_checked(bad, tmp_path, capsys):
    args = ["rig", "log", "--port", "/dev/null", "--no-meter", "--out", str(tmp_path), *bad]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {bad[0]}" in err and bad[1] in err
    assert not list(tmp_path.iterdir())


def test_log_needs_a_meter_or_no_meter(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rig", "log", "--port", "/dev/null", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--meter" in capsys.readouterr().err


def test_silent_meter_warns_and_fails_the_session(vprinter, tmp_path, capsys):
    """A meter that never answers (a Modbus port nobody serves): the live line warns after
    --meter-timeout, summary.toml says the meter never answered, and rig log exits 1."""
    from slicer_energy.rig.sim.pty import PtyPort

    silent = PtyPort()
    try:
        rc = main(
            _log_args(
                vprinter.path,
                tmp_path,
                "--meter",
                f"pzem:{silent.path}",
                "--meter-timeout",
                "0.3",
                "--duration",
                "1.5",
            )
        )
    finally:
        silent.close()
    captured = capsys.readouterr()
    assert rc == 1
    assert "WARNING: no meter reading" in captured.err
    assert "meter never answered" in captured.out
    (folder,) = tmp_path.iterdir()
    summary = tomllib.loads((folder / "summary.toml").read_text())
    assert summary["status"] == "meter never answered"
    assert summary["meter"]["answered"] is False and summary["meter"]["readings"] == 0
    assert any("no valid reading" in t for _ts, _w, d, t in read_serial(folder) if d == "#")
