"""Session logger: append-only files that survive SIGKILL, summary and Parquet copies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from slicer_energy.errors import SessionError
from slicer_energy.rig.logger import (
    POWER_COLUMNS,
    SessionLogger,
    dump_toml,
    read_meta,
    read_power,
    read_serial,
    summarize,
)
from slicer_energy.rig.meters import MeterSample
from slicer_energy.rig.protocol import HeaterReading

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(60)

CHILD = textwrap.dedent(
    """
    import sys, time
    from slicer_energy.rig.logger import SessionLogger
    from slicer_energy.rig.meters import MeterSample
    log = SessionLogger(sys.argv[1], "killed", name="s", clock=time.time)
    i = 0
    while True:
        t = time.time()
        log.power(MeterSample(t_s=t, power_w=float(i), energy_wh=i / 3600.0))
        log.serial("<", f"ok {i}")
        if i == 20:
            print("running", flush=True)
        i += 1
        time.sleep(0.005)
    """
)


def test_sigkill_keeps_everything_up_to_the_last_flush(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "running"
        time.sleep(1.5)
        t_kill = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = tmp_path / "s"
    raw = (folder / "power.csv").read_text().split("\n")
    assert raw[0] == ",".join(POWER_COLUMNS)
    complete = [ln for ln in raw[1:-1]]  # the last element is "" or a torn line
    assert all(len(ln.split(",")) == len(POWER_COLUMNS) for ln in complete)
    samples = read_power(folder)
    assert len(samples) == len(complete) >= 100
    # consecutive, nothing lost in between: power_w is the running index
    assert [s.power_w for s in samples] == [float(i) for i in range(len(samples))]
    # flushed every 0.5 s: the last sample on disk is at most ~1 s older than the kill (the
    # bound allows for scheduling delays on a loaded 2-core CI machine)
    assert t_kill - samples[-1].t_s < 1.5
    serial = read_serial(folder)
    assert [t for _ts, _w, d, t in serial if d == "<"][:3] == ["ok 0", "ok 1", "ok 2"]
    assert read_meta(folder)["session"]["label"] == "killed"


@pytest.fixture
def new_logger(tmp_path):
    """Make a SessionLogger in tmp_path; teardown closes any the test did not reach closing
    (each runs a flush thread and holds its files open)."""
    made = []

    def make(label: str, name: str) -> SessionLogger:
        made.append(SessionLogger(tmp_path, label, name=name))
        return made[-1]

    yield make
    for log in made:
        log.close(summary=False)  # a no-op for a closed one


def test_torn_last_line_is_skipped(new_logger):
    log = new_logger("torn", "t")
    for i in range(5):
        log.power(MeterSample(t_s=float(i), power_w=10.0))
    log.close(summary=False)
    with open(log.folder / "power.csv", "a") as f:
        f.write("5.0000,17000")  # a writer killed mid-line
    assert len(read_power(log.folder)) == 5


def test_summary_phases_match_hand_integral(new_logger):
    """Power ramps p = 10·t W over 0..20 s; phases at 0 and 10 s: 500 J and 1500 J exactly."""
    log = new_logger("ramp", "r")
    log.phase("heatup", 0.0)
    for i in range(0, 21):
        if i == 10:
            log.phase("print", 10.0)
        log.power(MeterSample(t_s=float(i), power_w=10.0 * i, energy_wh=i * 0.01))
    log.temps({"T0": HeaterReading(200.0, 210.0, 100.0)}, 5.0)
    s = log.close("finished")
    assert s["duration_s"] == pytest.approx(20.0)
    assert s["energy_kwh"] == pytest.approx(2000.0 / 3.6e6)
    assert s["phases"]["heatup"]["energy_kwh"] == pytest.approx(500.0 / 3.6e6)
    assert s["phases"]["print"]["energy_kwh"] == pytest.approx(1500.0 / 3.6e6)
    assert s["phases"]["print"]["mean_power_w"] == pytest.approx(150.0)
    assert s["meter_counter_kwh"] == pytest.approx(0.2 / 1000)
    on_disk = tomllib.loads((log.folder / "summary.toml").read_text())
    assert on_disk["phases"]["heatup"]["duration_s"] == pytest.approx(10.0)
    assert summarize(log.folder)["energy_kwh"] == pytest.approx(s["energy_kwh"])


def test_parquet_copy_equals_csv(new_logger):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    log = new_logger("pq", "p")
    for i in range(7):
        log.power(MeterSample(t_s=i * 0.5, power_w=3.0 * i, voltage_v=230.1))
        log.temps({"T0": HeaterReading(20.0 + i, 210.0, 127.0), "B": HeaterReading(21.0, 60.0)})
    log.serial(">", "N1 G28*18")
    log.close()
    df = pd.read_parquet(log.folder / "power.parquet")
    assert list(df["power_w"]) == [3.0 * i for i in range(7)]
    temps = pd.read_parquet(log.folder / "temps.parquet")
    assert len(temps) == 14 and set(temps["sensor"]) == {"T0", "B"}
    serial = pd.read_parquet(log.folder / "serial.parquet")
    assert "N1 G28*18" in list(serial["text"])


def test_refuses_to_overwrite(tmp_path):
    SessionLogger(tmp_path, "x", name="same").close(summary=False)
    with pytest.raises(SessionError, match="exists"):
        SessionLogger(tmp_path, "x", name="same")


def test_dump_toml_round_trip():
    d = {
        "a": 1,
        "b": 2.5,
        "s": 'quote " and \\ back',
        "flag": True,
        "lst": [1, 2.0, "x"],
        "t": {"x": 1, "u": {"deep": "yes"}},
    }
    assert tomllib.loads(dump_toml(d)) == d


def test_committed_example_session_reads_back():
    """The example in firmware_logs/ (packaged data) parses with the readers and its
    summary.toml equals a fresh summary of its files."""
    from slicer_energy.resources import data_dir

    folders = [p for p in data_dir("firmware_logs").iterdir() if p.is_dir()]
    assert folders, "no example session in firmware_logs/"
    for folder in folders:
        meta = read_meta(folder)
        assert meta["format_version"] == 1
        stored = tomllib.loads((folder / "summary.toml").read_text())
        fresh = summarize(folder)
        assert fresh["energy_kwh"] == pytest.approx(stored["energy_kwh"], rel=1e-9)
        assert set(fresh["phases"]) == set(stored["phases"])
        assert len(read_power(folder)) == stored["samples"]
        truth = folder.parent / (folder.name + ".sim_truth.toml")
        if meta["printer"].get("simulated"):
            assert truth.is_file()
