"""The host never calls a rejected line printed.

The sequence of issue 14: an earlier session leaves the firmware's line counter at 515 (and its
answers and temperature auto-reports unread in the port); a new host connects and prints. Before
the fix the handshake's un-numbered ``M110 N0`` left the counter at 515, every line was answered
``Error:Line Number is not Last Line Number+1, Last Line: 515`` / ``Resend: 516`` / ``ok`` and
the host counted those ``ok`` as acknowledgements: "print done", nothing printed, M115 lost.
Run on our virtual printer and on OctoPrint's Virtual Printer (bridged to a pty).
"""

from __future__ import annotations

import threading
import time

import pytest
import serial

from slicer_energy.errors import PrinterError
from slicer_energy.rig import protocol as P
from slicer_energy.rig.marlin import connect, job_command, open_serial
from slicer_energy.rig.sim.physics import SimClock, draw_printer
from slicer_energy.rig.sim.printer import VirtualPrinter, demo_gcode
from slicer_energy.rig.sim.pty import PtyPort

pytestmark = pytest.mark.timeout(90)

HOST_CMDS = {"M105", "M115", "M155", "M110"}
STALE_COUNTER = 515


def _expected(lines: list[str]) -> list[str]:
    return [c for c in (job_command(ln) for ln in lines) if c]


def _earlier_session(path: str, last_line: int, extra: list[str] = ()) -> None:
    """What a previous host leaves behind: lines N1..N<last_line> accepted, the extra commands
    sent without reading their answers, then the port closed without a reset."""
    with serial.Serial(path, 115200, timeout=2.0) as ser:
        for n in range(1, last_line + 1):
            ser.write((P.numbered_line(n, "G90") + "\n").encode())
            while True:
                line = ser.readline().decode(errors="replace").strip()
                assert line, f"no ok for line {n} in the earlier session"
                if P.is_ok(line):
                    break
        for cmd in extra:
            ser.write((cmd + "\n").encode())
            time.sleep(0.05)  # one line per write: OctoPrint's VirtualPrinter takes one per write
        time.sleep(0.3)  # the answers arrive and stay unread in the port


@pytest.fixture
def printer():
    p = VirtualPrinter(draw_printer(7), SimClock(400.0)).start()
    yield p
    p.stop()


def test_stale_counter_on_our_virtual_printer(printer):
    _earlier_session(printer.path, STALE_COUNTER, ["M155 S1", "M105", "M105"])
    assert printer.last_n == STALE_COUNTER
    lines = demo_gcode(layers=2)
    host = connect(printer.path, 115200, handshake_wait_s=1.0, timeout_s=2.0)
    try:
        assert host.firmware.name.startswith("Marlin 2.1"), "M115 answer lost"
        host.start_print(lines, name="after a stale session")
        job = host.wait_job(60)
        assert job.state == "done", job.message
        job_lines = [c for c in printer.received if c.split(" ", 1)[0] not in HOST_CMDS]
        assert job_lines[-len(_expected(lines)) :] == _expected(lines)
        assert job.acked == len(_expected(lines))
        assert printer.last_n == host._n
    finally:
        host.close()


def test_counter_jump_mid_print_resynchronises(printer):
    """Someone moves the firmware's counter during the print (a stray numbered M110 on the
    line): the next line is rejected with Resend beyond what the host sent; the host sends a
    numbered M110 and resends, so every line is executed exactly once."""
    lines = demo_gcode(layers=2)
    host = connect(printer.path, 115200, handshake_wait_s=1.0, timeout_s=2.0)
    events: list[str] = []
    host.on_line = lambda d, t, ts: events.append(f"{d}{t}")
    try:
        host.start_print(lines, name="jump")
        deadline = time.monotonic() + 20
        while host.job.acked < 20 and time.monotonic() < deadline:
            time.sleep(0.005)
        printer.last_n += 1000  # as if a line N<last+1000> M110 had reached it
        job = host.wait_job(60)
        assert job.state == "done", job.message
        job_lines = [c for c in printer.received if c.split(" ", 1)[0] not in HOST_CMDS]
        assert job_lines == _expected(lines)
        assert any(e.startswith(">N") and " M110 N" in e for e in events[1:])
        assert host.resends >= 1
    finally:
        host.close()


class _IgnoresM110(VirtualPrinter):
    """Firmware that answers M110 with ok but does not take the number (as some clones do)."""

    ignore_m110 = False

    def _handle_line(self, line: str) -> None:
        if self.ignore_m110 and "M110" in line:
            self._send("ok")
            return
        super()._handle_line(line)


def test_firmware_that_keeps_rejecting_lines_fails_the_print():
    """Resynchronising is tried a few times; then the print ends in error with the firmware's
    own message instead of 'done', and no rejected line counts as acknowledged."""
    printer = _IgnoresM110(draw_printer(7), SimClock(400.0)).start()
    host = None
    try:
        host = connect(printer.path, 115200, handshake_wait_s=1.0, timeout_s=2.0)
        printer.ignore_m110 = True
        printer.last_n = STALE_COUNTER
        host.start_print(["G90", "G1 X10 F3000", "G1 X20"], name="rejected")
        job = host.wait_job(20)
        assert job.state == "error"
        assert f"Last Line: {STALE_COUNTER}" in job.message
        assert job.acked == 0
        assert "G1 X10 F3000" not in printer.received
    finally:
        if host is not None:
            host.close()
        printer.stop()


class _OkToEverything:
    """A pty device that answers every line with a plain 'ok' and nothing else."""

    def __init__(self) -> None:
        self.pty = PtyPort()
        self.path = self.pty.path
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (data := self.pty.read(0.05)) is not None:
            for _ in range(data.count(b"\n")):
                self.pty.write(b"ok\n")

    def stop(self) -> None:
        self.pty.close()
        self._thread.join(2.0)


def test_handshake_needs_the_answer_to_its_own_command():
    """Plain 'ok' lines are no proof that the firmware took our numbered M110: without the
    M115 answer after it the handshake fails instead of streaming into the void."""
    dev = _OkToEverything()
    try:
        with pytest.raises(PrinterError, match="no Marlin printer"):
            connect(dev.path, 115200, handshake_tries=2, handshake_wait_s=0.3)
    finally:
        dev.stop()


# ------------------------------------------------------------------ OctoPrint's Virtual Printer


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_stale_counter_on_octoprint_virtual_printer(octoprint_env):
    from test_rig_peers import PtyBridge, _virtual_printer

    vp = _virtual_printer(octoprint_env, okFormatString="ok", simulated_errors=[])
    bridge = PtyBridge(vp)
    host = None
    try:
        time.sleep(0.5)  # boot banner
        _earlier_session(bridge.path, STALE_COUNTER, ["M105", "M105"])
        assert vp.lastN == STALE_COUNTER
        program = ["G90", "G1 X10 F3000", "M117 one", "G1 X20", "M117 two", "G1 Y5"]
        host = connect(bridge.path, 115200, timeout_s=1.5, handshake_wait_s=1.0)
        assert "Virtual Marlin" in host.firmware.name, "M115 answer lost"
        vp.executed.clear()
        host.start_print(program, name="after a stale session")
        job = host.wait_job(30)
        assert job.state == "done", job.message

        def executed():  # its ok comes when a line is queued; it runs from the queue later
            return [c for c in vp.executed if c.split(" ", 1)[0] not in HOST_CMDS]

        deadline = time.monotonic() + 10
        while executed() != program and time.monotonic() < deadline:
            time.sleep(0.05)
        assert executed() == program
        assert vp.lastN == host._n
    finally:
        if host is not None:
            host.close()
        bridge.close()


def test_open_serial_is_exclusive(printer):
    """A second opener of a busy port is refused with a message naming the port."""
    first = open_serial(printer.path, 115200)
    try:
        with pytest.raises(PrinterError, match=f"{printer.path}.*in use"):
            open_serial(printer.path, 115200)
    finally:
        first.close()
    open_serial(printer.path, 115200).close()  # free again once the first one closed
