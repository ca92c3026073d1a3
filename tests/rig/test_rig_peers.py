"""Real peers, not only our own simulator.

- Our host prints on OctoPrint's Virtual Printer (PyPI ``octoprint``) with its line-error
  simulation on, bridged to a pty.
- Printrun's ``printcore`` and OctoPrint's ``MachineCom`` print on our virtual printer.
"""

from __future__ import annotations

import gzip
import os
import select
import threading
import time
import tty

import pytest

from slicer_energy.rig.marlin import connect, job_command
from slicer_energy.rig.sim.physics import SimClock, draw_printer
from slicer_energy.rig.sim.printer import Faults, VirtualPrinter, demo_gcode

from conftest import CORPUS, need_shared

pytestmark = pytest.mark.timeout(120)

HOST_CMDS = {"M105", "M115", "M155", "M110", "M27", "M21", "M113", "M114", "M400"}


def _job_only(received):
    return [c for c in received if c.split(" ", 1)[0] not in HOST_CMDS]


def _expected(lines):
    return [c for c in (job_command(ln) for ln in lines) if c]


# ------------------------------------------------------------------ OctoPrint's Virtual Printer


def _virtual_printer(octoprint_env, **overrides):
    from octoprint.plugin import PluginSettings
    from octoprint.plugins.virtual_printer import VirtualPrinterPlugin
    from octoprint.plugins.virtual_printer.virtual import VirtualPrinter
    from octoprint.printer.profile import PrinterProfileManager

    s, base = octoprint_env
    defaults = VirtualPrinterPlugin().get_settings_defaults()
    defaults.update(overrides)
    ps = PluginSettings(s, "virtual_printer", defaults=defaults)

    class Recording(VirtualPrinter):
        """Records every G/M command the virtual printer executes (its letter-handler hook)."""

        def __init__(self, *a, **kw):
            self.executed = []
            super().__init__(*a, **kw)

        def _gcode_G(self, code, data):
            self.executed.append(data.strip())
            return False

        def _gcode_M(self, code, data):
            self.executed.append(data.strip())
            return False

    return Recording(ps, PrinterProfileManager(), data_folder=str(base), read_timeout=0.1)


class PtyBridge:
    """Exposes an object with write(bytes)/readline() (OctoPrint's VirtualPrinter) as a pty."""

    def __init__(self, dev):
        self.dev = dev
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._to_dev, daemon=True),
            threading.Thread(target=self._from_dev, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _to_dev(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                if data:
                    self.dev.write(data)

    def _from_dev(self):
        while not self._stop.is_set():
            line = self.dev.readline()
            if not line:
                continue
            if not line.endswith(b"\n"):
                line += b"\n"
            try:
                os.write(self.master, line)
            except OSError:
                return

    def close(self):
        self._stop.set()
        self.dev.close()
        for t in self._threads:
            t.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def octoprint_pty(octoprint_env):
    """Make OctoPrint's VirtualPrinter behind a pty; teardown closes both (their threads are
    not daemons: one left running keeps pytest from exiting), also when the test fails."""
    bridges = []

    def make(**overrides):
        vp = _virtual_printer(octoprint_env, **overrides)
        try:
            bridges.append(PtyBridge(vp))
        except BaseException:
            vp.close()
            raise
        return vp, bridges[-1]

    yield make
    for b in bridges:
        b.close()


def _corpus_program(n_lines=160):
    """Real slicer G-code (PrusaSlicer cube from the corpus) without heat-up waits and homing,
    interleaved with numbered M117 markers so the executed order can be checked."""
    path = need_shared("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    out = []
    with gzip.open(path, "rt", errors="replace") as f:
        for raw in f:
            c = job_command(raw)
            if not c or c.split()[0] in ("M104", "M109", "M140", "M190", "G28", "G29", "M84"):
                continue
            out.append(c)
            if len(out) % 10 == 0:
                out.append(f"M117 marker {len(out)}")
            if len(out) >= n_lines:
                break
    assert CORPUS.exists()
    return out


@pytest.mark.slow
# OctoPrint's VirtualPrinter.close() sets its queues to None while its buffer thread still runs
# (virtual.py _processBuffer -> AttributeError 'task_done'); that is the peer's shutdown race.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("broken_resend", [False, True], ids=["ok-after-resend", "no-ok"])
def test_our_host_on_octoprint_virtual_printer(octoprint_pty, broken_resend):
    program = _corpus_program()  # skips without ../shared: before anything is started
    errors = ["30:resend", "60:missing_lineno", "90:checksum_mismatch", "120:resend"]
    vp, bridge = octoprint_pty(
        simulated_errors=errors, brokenResend=broken_resend, okFormatString="ok"
    )
    host = None
    # let the boot banner ("start" ...) reach the pty before the host opens it; a "start" after
    # the handshake would (rightly) be taken for a reset
    time.sleep(0.5)
    try:
        host = connect(bridge.path, 115200, timeout_s=1.5, resend_grace_s=0.4)
        assert "Virtual Marlin" in host.firmware.name
        host.start_print(program, name="corpus cube")
        job = host.wait_job(90)
        assert job.state == "done", job.message
        assert job.acked == len(program)
        assert host.resends >= 3
        executed = _job_only(vp.executed)
        assert executed == program, "lines lost, duplicated or reordered"
        if broken_resend:
            assert host.ok_after_resend is False
    finally:
        if host is not None:
            host.close()


# ------------------------------------------------------------------ peers on our printer


@pytest.fixture
def our_printer():
    made = []

    def make(faults=None, scale=400.0):
        p = VirtualPrinter(draw_printer(9), SimClock(scale), faults).start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def test_printcore_prints_on_our_virtual_printer(our_printer):
    printcore_mod = pytest.importorskip("printrun.printcore")
    gcoder = pytest.importorskip("printrun.gcoder")
    printer = our_printer(Faults(corrupt_lines={7, 19, 44}))
    lines = demo_gcode(layers=3)
    p = printcore_mod.printcore(printer.path, 115200)
    try:
        deadline = time.monotonic() + 15
        while not p.online and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.online, "printcore never saw the printer online"
        p.startprint(gcoder.LightGCode(lines))
        deadline = time.monotonic() + 60
        while (p.printing or not p.clear) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not p.printing
        time.sleep(0.3)
        assert _job_only(printer.received) == _expected(lines)
    finally:
        p.disconnect()


class _Callback:
    def __init__(self):
        self.done = threading.Event()
        self.failed = []
        self.states = []

    def __getattr__(self, name):  # every other on_comm_* hook is a no-op
        if name.startswith("on_comm_"):
            return lambda *a, **kw: None
        raise AttributeError(name)

    def on_comm_state_change(self, state):
        self.states.append(state)

    def on_comm_print_job_done(self, *a, **kw):
        self.done.set()

    def on_comm_print_job_failed(self, *a, **kw):
        self.failed.append((a, kw))
        self.done.set()

    def on_comm_error(self, error, reason, *a, **kw):
        self.failed.append((error, reason))


@pytest.mark.slow
def test_octoprint_machinecom_prints_on_our_virtual_printer(octoprint_env, our_printer, tmp_path):
    import octoprint.events
    from octoprint.printer.profile import PrinterProfileManager
    from octoprint.util import comm

    octoprint.events.eventManager()
    printer = our_printer(Faults(corrupt_lines={12, 30}))
    lines = demo_gcode(layers=2)
    gfile = tmp_path / "demo.gcode"
    gfile.write_text("\n".join(lines) + "\n")
    cb = _Callback()
    mc = comm.MachineCom(printer.path, 115200, cb, PrinterProfileManager())
    mc.start()
    try:
        deadline = time.monotonic() + 20
        while not mc.isOperational() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mc.isOperational(), f"MachineCom state {mc.getStateString()}"
        mc.selectFile(str(gfile), False)
        mc.startPrint()
        assert cb.done.wait(60), f"MachineCom state {mc.getStateString()}"
        assert not cb.failed
        deadline = time.monotonic() + 5
        while _job_only(printer.received) != _expected(lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _job_only(printer.received) == _expected(lines)
    finally:
        mc.close(wait=False)
