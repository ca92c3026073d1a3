"""A real OctoPrint (``octoprint.util.comm.MachineCom``, PyPI ``octoprint``) prints on our
virtual printer while our virtual meter records: the recording that the OctoPrint and
smart-plug tests read.

OctoPrint writes its ``serial.log`` through its own ``SERIAL`` logger, handler
(``SerialLogHandler``) and format (``%(asctime)s - %(message)s``, OctoPrint's logging
defaults); only the clock the log records are stamped with is the simulation's (the printer
runs faster than real time), exactly as the rig logger stamps its records with it.
Nothing here reads the simulator's truth except the tests, to check the results.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from slicer_energy.rig.sim.physics import PrinterParams, SimClock, draw_printer
from slicer_energy.rig.sim.printer import Faults, VirtualMeter, VirtualPrinter, demo_gcode

from conftest import octoprint_singletons

SCALE = 50.0  # simulated seconds per real second, as the rig recovery tests
EPOCH0 = 1_795_700_000.0  # 2026-11-26 ~12:53 UTC: where simulated second 0 sits on the host clock


@dataclass
class Recording:
    serial_log: Path
    gcode: Path
    meter: list[tuple[float, float]]  # (host Unix s, W): what the meter measured, true clock
    params: PrinterParams  # the hidden truth (tests only)
    true_energy_j: list[tuple[float, float]]


class _SimTime(logging.Filter):
    """Stamp records with the simulation clock (the host's clock in this simulation)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self.clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        t = EPOCH0 + self.clock.now()
        record.created = t
        record.msecs = (t - int(t)) * 1000.0
        return True


class _Callback:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.failed: list = []

    def __getattr__(self, name):
        if name.startswith("on_comm_"):
            return lambda *a, **kw: None
        raise AttributeError(name)

    def on_comm_print_job_done(self, *a, **kw):
        self.done.set()

    def on_comm_print_job_failed(self, *a, **kw):
        self.failed.append((a, kw))
        self.done.set()


def _log_serial_to(log_path: Path, clock: SimClock, started: contextlib.ExitStack) -> None:
    """OctoPrint's SERIAL logger writes ``log_path`` as "Log communication to serial.log" makes
    it, stamped with the simulation clock; ``started`` undoes it."""
    from octoprint.logging.handlers import SerialLogHandler

    handler = SerialLogHandler(str(log_path), backupCount=3, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(message)s"))
    handler.addFilter(_SimTime(clock))
    started.callback(handler.close)
    serial_logger = logging.getLogger("SERIAL")
    started.callback(setattr, serial_logger, "propagate", serial_logger.propagate)
    started.callback(serial_logger.setLevel, serial_logger.level)
    serial_logger.setLevel(logging.DEBUG)  # what "Log communication to serial.log" does
    serial_logger.propagate = False
    serial_logger.addHandler(handler)
    started.callback(serial_logger.removeHandler, handler)


def _poll_plug(
    vmeter: VirtualMeter, clock: SimClock, interval_s: float, started: contextlib.ExitStack
) -> list[tuple[float, float]]:
    """A smart plug reading ``vmeter`` every ``interval_s`` simulated seconds on a thread
    (stopped and joined by ``started``): the list its (host Unix s, W) samples go to."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def poll():
        nxt = clock.now()
        while not stop.is_set():
            clock.sleep_until(nxt, stop)
            if stop.is_set():
                return
            s = vmeter.reading()
            samples.append((EPOCH0 + s.t_s, s.power_w))
            nxt += interval_s

    poller = threading.Thread(target=poll, name="plug-meter", daemon=True)
    poller.start()
    started.callback(poller.join, 2.0)
    started.callback(stop.set)
    return samples


def record_octoprint_print(
    out: Path,
    *,
    printer_seed: int = 4,
    seed: int = 7,
    layers: int = 10,
    size_mm: float = 25.0,
    lead_s: float = 60.0,
    tail_s: float = 300.0,
    meter_interval_s: float = 1.0,
) -> Recording:
    """OctoPrint connects, idles ``lead_s``, prints the demo part, stays connected ``tail_s``
    (cool-down); the virtual meter is read every ``meter_interval_s`` simulated seconds."""
    pytest.importorskip("octoprint")
    import octoprint.events
    from octoprint.printer.profile import PrinterProfileManager
    from octoprint.util import comm

    out.mkdir(parents=True, exist_ok=True)
    params = draw_printer(printer_seed)
    clock = SimClock(SCALE)
    log_path = out / "serial.log"
    gfile = out / "part.gcode"
    gfile.write_text("\n".join(demo_gcode(layers=layers, size_mm=size_mm)) + "\n")
    # everything started is stopped (in reverse order) however the recording ends
    with contextlib.ExitStack() as started:
        started.enter_context(octoprint_singletons(out / "octoprint"))
        octoprint.events.eventManager()
        _log_serial_to(log_path, clock, started)
        faults = Faults(corrupt_lines={12, 30, 95}, seed=seed)
        printer = VirtualPrinter(params, clock, faults).start()
        started.callback(printer.stop)
        vmeter = VirtualMeter(printer.physics, clock, "pzem", seed=seed)  # read directly:
        started.callback(vmeter.pty.close)  # its serial side is never served
        samples = _poll_plug(vmeter, clock, meter_interval_s, started)
        cb = _Callback()
        mc = comm.MachineCom(printer.path, 115200, cb, PrinterProfileManager())
        started.callback(mc.close, wait=True)
        mc.start()
        deadline = time.monotonic() + 20
        while not mc.isOperational() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mc.isOperational(), f"MachineCom state {mc.getStateString()}"
        clock.sleep_until(clock.now() + lead_s)
        mc.selectFile(str(gfile), False)
        mc.startPrint()
        assert cb.done.wait(120), f"MachineCom state {mc.getStateString()}"
        assert not cb.failed, cb.failed
        clock.sleep_until(clock.now() + tail_s)
    return Recording(log_path, gfile, samples, params, list(vmeter.true_log))


def write_home_assistant_csv(
    path: Path,
    meter: list[tuple[float, float]],
    offset_s: float,
    *,
    entity: str = "sensor.printer_plug_power",
    unavailable: tuple[float, float] | None = None,
    decimals: int = 1,
) -> None:
    """The History panel's CSV export: ``entity_id,state,last_changed`` (UTC ISO 8601), a row
    per state change, ``unavailable`` while the plug was offline. The plug's clock runs
    ``offset_s`` ahead of the host's."""
    import datetime as dt

    rows = ["entity_id,state,last_changed"]
    last = None
    down = False
    for t, p in meter:
        tm = t + offset_s
        stamp = dt.datetime.fromtimestamp(tm, dt.timezone.utc).isoformat(timespec="milliseconds")
        stamp = stamp.replace("+00:00", "Z")
        if unavailable and unavailable[0] <= t < unavailable[1]:
            if not down:
                rows.append(f"{entity},unavailable,{stamp}")
                down, last = True, None
            continue
        down = False
        s = f"{p:.{decimals}f}"
        if s != last:  # Home Assistant records changes only
            rows.append(f"{entity},{s},{stamp}")
            last = s
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_octoprint_recording_is_a_real_serial_log(tmp_path_factory):
    """The generated log has OctoPrint's own records (state changes, Send/Recv, resends)."""
    rec = shared_recording(tmp_path_factory)
    text = rec.serial_log.read_text()
    assert 'Changing monitoring state from "Operational" to "Starting"' in text
    assert 'Changing monitoring state from "Finishing" to "Operational"' in text
    assert "Send: N1 M140 S60*" in text
    assert "Recv:  T:" in text  # auto-reports (M155), OctoPrint logs the leading space
    assert "Resend:" in text  # the printer's line noise was corrected by OctoPrint
    assert len(rec.meter) > 500


_CACHE: dict[str, Recording] = {}


def shared_recording(tmp_path_factory) -> Recording:
    """One OctoPrint print per test run, shared by the OctoPrint, plug and clock tests."""
    if "rec" not in _CACHE:
        _CACHE["rec"] = record_octoprint_print(tmp_path_factory.mktemp("octoprint_print"))
    return _CACHE["rec"]
