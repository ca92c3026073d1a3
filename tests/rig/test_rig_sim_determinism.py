"""The simulated session does not depend on the host machine's speed (issue 14 item 12), and
the virtual printer resets its line counter on an un-numbered ``M110 N`` as Marlin does.

A busy Python thread competing for the GIL stands in for a loaded machine: it delays every
host, logger and poller step by milliseconds, which the old wall-scaled clock multiplied by
the time scale into idle printer time (the issue saw -7.3 % then -0.0 % held-out energy).
"""

from __future__ import annotations

import threading

import pytest
import serial

from slicer_energy.cli import main
from slicer_energy.rig import protocol as P
from slicer_energy.rig.logger import read_temps
from slicer_energy.rig.sim.demo import run_demo
from slicer_energy.rig.sim.physics import SimClock, draw_printer
from slicer_energy.rig.sim.printer import VirtualPrinter, demo_gcode

pytestmark = pytest.mark.timeout(180)


def _session(out, *, loaded: bool):
    stop = threading.Event()
    hog = threading.Thread(target=lambda: [sum(range(1000)) for _ in iter(stop.is_set, True)])
    if loaded:
        hog.start()
    try:
        return run_demo(
            out, printer_seed=3, seed=1, scale=500.0, tail_s=10.0, gcode_lines=demo_gcode(layers=1)
        ).session
    finally:
        stop.set()
        if loaded:
            hog.join()


def test_same_seeds_same_session_on_an_idle_or_a_loaded_machine(tmp_path):
    idle = _session(tmp_path / "idle", loaded=False)
    busy = _session(tmp_path / "busy", loaded=True)
    for s in (idle, busy):
        assert s.status == "finished", s.messages
    assert busy.summary["energy_kwh"] == pytest.approx(idle.summary["energy_kwh"], rel=1e-3)
    for phase in ("heatup", "print"):
        a, b = idle.summary["phases"][phase], busy.summary["phases"][phase]
        assert b["duration_s"] == pytest.approx(a["duration_s"], abs=1e-6), phase
        assert b["energy_kwh"] == pytest.approx(a["energy_kwh"], rel=1e-3), phase
    # the same temperature reports, logged at the same simulated times
    rows = [
        [(r["t_s"], r["sensor"], r["actual_c"]) for r in read_temps(s.folder)] for s in (idle, busy)
    ]
    assert rows[0] == rows[1]


@pytest.fixture
def printer():
    p = VirtualPrinter(draw_printer(1), SimClock(1.0)).start()
    try:
        yield p
    finally:
        p.stop()


def _exchange(port: serial.Serial, line: str) -> list[str]:
    """Send one line, return what came back up to and including its ok."""
    port.write((line + "\n").encode())
    got: list[str] = []
    while not got or not got[-1].startswith("ok"):
        raw = port.readline()
        assert raw, f"no answer to {line!r}; got {got}"
        got.append(raw.decode().strip())
    return got


def test_unnumbered_m110_resets_the_line_counter(printer):
    """An earlier session left the counter at 515; Marlin's M110 (``M110.cpp``:
    ``if (parser.seenval('N')) set_current_line_number(...)``) resets it whether or not the
    line itself is numbered, so the next session's N1 is accepted."""
    with serial.Serial(printer.path, 115200, timeout=2.0) as port:
        port.reset_input_buffer()
        assert _exchange(port, P.numbered_line(515, "M110"))[-1] == "ok"
        assert printer.last_n == 515
        assert _exchange(port, "M110 N0")[-1] == "ok"
        assert printer.last_n == 0
        answer = _exchange(port, P.numbered_line(1, "M114"))
    assert not any(a.startswith(("Error", "Resend")) for a in answer), answer
    assert answer[0].startswith("X:")


@pytest.mark.parametrize("scale", ["0", "-5", "nan"])
def test_demo_scale_must_be_positive(tmp_path, capsys, scale):
    assert main(["rig", "demo", "--out", str(tmp_path), "--scale", scale]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scale" in err[0], err
    assert not list(tmp_path.iterdir())  # nothing started, nothing written
