"""The ``rig`` command line: demo, simulate + log end to end in subprocesses, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from slicer_energy.cli import main
from slicer_energy.rig.logger import read_meta, read_power, read_serial
from slicer_energy.rig.sim import demo_gcode

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(120)
CLI = [sys.executable, "-m", "slicer_energy.cli"]


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
    rc = main(
        ["rig", "log", "--printer", "/dev/null", "--meter", "watts:x", "--out", str(tmp_path)]
    )
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


def test_simulate_then_log_a_print(tmp_path, simulate):
    sim, info = simulate(50.0)
    assert info["meter_kind"] == "pzem" and info["printer"].startswith("/dev/")
    gfile = tmp_path / "part.gcode"
    gfile.write_text("\n".join(demo_gcode(layers=2)) + "\n")
    try:
        run = subprocess.run(
            [
                *CLI,
                "rig",
                "log",
                "--printer",
                info["printer"],
                "--baud",
                "115200",
                "--meter",
                f"pzem:{info['meter']}",
                "--print",
                str(gfile),
                "--out",
                str(tmp_path / "logs"),
                "--tail",
                "0.5",
                "--meter-interval",
                "0.1",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        _stop(sim)
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
            "rig",
            "log",
            "--printer",
            info["printer"],
            "--baud",
            "115200",
            "--meter",
            f"pzem:{info['meter']}",
            "--print",
            str(gfile),
            "--out",
            str(tmp_path / "logs"),
            "--quiet",
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
    try:
        run = subprocess.run(
            [
                *CLI,
                "rig",
                "log",
                "--printer",
                info["printer"],
                "--baud",
                "115200",
                "--attach",
                "--meter",
                f"pzem:{info['meter']}",
                "--duration",
                "1.5",
                "--out",
                str(tmp_path),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        _stop(sim)
    assert run.returncode == 0, run.stderr
    assert "resets most Arduino-Mega" in run.stderr
    (folder,) = tmp_path.iterdir()
    assert read_meta(folder)["printer"]["attach"] is True
    sent = [t for _ts, _w, d, t in read_serial(folder) if d == ">"]
    assert sent and "M110 N0" not in sent and set(sent) <= {"M105", "M27"}
