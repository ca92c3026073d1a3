"""A Marlin/RepRap host over pyserial: handshake, numbered lines, resends, streaming.

Like Klipper's ``serialhdl`` this module knows only transport and protocol, nothing of energy.
One reader thread stamps every received line once (with the injected ``clock``) and one
writer thread sends when the firmware has room: by default one line in flight, each ``ok``
returns one credit. The parsing itself is in :mod:`.protocol` (pure functions); the port and
its threads in :mod:`.transport`, the numbered lines and their recovery in :mod:`.lines`, the
print job in :mod:`.job`. Timeouts run on the injected ``timer`` (real seconds), never on
``clock``, which only stamps the log.

Recovery rules (what real firmware does, see ``tests/rig/test_rig_host.py``):

- One line in flight by default; when the firmware answers with ADVANCED_OK
  (``ok N12 P15 B3``) the window follows its free command slots (``B``), up to ``max_window``.
- ``Resend: N`` (or ``rs N``): lines from N on are sent again from the history. Marlin follows
  a resend request with an ``ok``; some firmwares do not, so if no ``ok`` arrives within
  ``resend_grace_s`` the credit is restored anyway, and that firmware's habit is remembered.
  That ``ok`` belongs to the rejection, never to a line.
- ``Resend: N`` beyond the last line sent: the firmware's counter is not ours (a previous
  session, a stray M110), so every line in flight was rejected. The host sends a numbered
  ``M110`` that sets the counter to the line before the first unacknowledged one and resends
  from there; after ``lines.MAX_RESYNCS`` tries in a row the print ends in error with the
  firmware's message. A print is done only when every line was acknowledged in order.
- No ``ok`` for ``timeout_s`` (``echo:busy:`` lines and heating reports during M109/M190
  restart the clock), or a ``wait`` (idle printer) while a line is in flight: the ``ok`` is
  assumed lost, M105 is sent to nudge the printer, and the
  stream goes on; after ``max_nudges`` nudges in a row without an answer the job fails.
- ``start`` after the handshake means the board reset: the print is stopped with a message.
- The port vanishing (USB pulled) stops everything cleanly; what was logged stays logged.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable

from ..errors import PrinterError
from . import protocol as P
from .job import JobControl, JobState
from .lines import LineWindow, Waiter
from .transport import SerialTransport

DEFAULT_BAUDS = (250000, 115200)
_MAX_GARBLED_HANDSHAKES = 10  # handshakes the printer asked to resend before giving up


LineCallback = Callable[[str, str, float], None]  # (direction ">"|"<"|"#", text, t_s)


def _of_lines(name: str, doc: str) -> property:
    """A read-only view of the host's line window's ``name`` (:class:`~.lines.LineWindow`)."""
    return property(lambda host: getattr(host._lines, name), doc=doc)


class MarlinHost:
    """Host for one printer on one serial port (a pyserial ``Serial`` or anything like it).

    Use :func:`connect` to open a port by name; construct directly with an open serial object.
    ``on_line(direction, text, t_s)`` receives every line sent (``>``), received (``<``) and
    every host event (``#``), stamped with ``clock()``, so a logger records everything.

    Two clocks, on purpose: ``clock`` stamps the log and the job's start and end (session time;
    a simulation's clock may run faster or stand still), while every timeout, deadline and poll
    interval runs on ``timer`` (real seconds: the firmware answers in real time).

    The host composes three parts that share its lock: :class:`~.transport.SerialTransport`
    (port and threads), :class:`~.lines.LineWindow` (numbering, lines in flight, resends) and
    :class:`~.job.JobControl` (the print job). It keeps the firmware's view of the printer
    (``firmware``, ``temps``, ``position``...) and routes each received line.
    """

    def __init__(
        self,
        ser,
        *,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[], float] = time.monotonic,
        on_line: LineCallback | None = None,
        timeout_s: float = 10.0,
        resend_grace_s: float = 0.5,
        max_nudges: int = 5,
        window: int = 1,
        max_window: int = 4,
        history: int = 5000,
    ) -> None:
        self.clock = clock
        self.timer = timer
        self.on_line = on_line
        self._cond = threading.Condition()
        self._jobs = JobControl(self._cond, clock, self.event)
        self._lines = LineWindow(
            self._jobs,
            self.event,
            now=timer(),
            timeout_s=timeout_s,
            resend_grace_s=resend_grace_s,
            max_nudges=max_nudges,
            window=window,
            max_window=max_window,
            history=history,
        )
        self.baud: int | None = getattr(ser, "baudrate", None)
        self.handshaken = False
        self.numbered = True
        self.error: str | None = None
        self.firmware = P.FirmwareInfo()
        self.temps: dict[str, P.HeaterReading] = {}
        self.temps_t_s: float | None = None
        self.position: dict[str, float] | None = None
        self.sd_progress: tuple[int, int] | None = None
        self.progress_pct: float | None = None
        self.print_time_s: float | None = None
        self.on_temps: Callable[[dict[str, P.HeaterReading], float], None] | None = None
        self._poll_interval_s: float | None = None
        self._poll_cmds: tuple[str, ...] = ()
        self._next_poll = 0.0
        self._handshake_lines: collections.deque[str] = collections.deque()
        self._port = SerialTransport(
            ser, log=self._log, on_line=self._on_line, on_lost=self._lost, next_text=self._next_text
        )
        self.connected = True
        self._port.start_reader()

    # ------------------------------------------------------------------ state of the parts
    @property
    def ser(self):
        """The serial object (pyserial ``Serial`` or alike)."""
        return self._port.ser

    @property
    def job(self) -> JobState:
        return self._jobs.job

    window = _of_lines("window", "Lines allowed in flight now (follows ADVANCED_OK's free slots).")
    ok_after_resend = _of_lines(
        "ok_after_resend",
        "Whether this firmware follows a resend request with an ``ok`` (None: not seen yet).",
    )
    advanced_ok = _of_lines("advanced_ok", "The last ADVANCED_OK reply parsed, if any.")
    resends = _of_lines("resends", "``Resend:`` requests received so far.")
    timeouts = _of_lines("timeouts", "Waits past ``timeout_s`` without progress (each nudged).")
    # The line counter, history and lines in flight, read (under ``_cond``) by
    # tests/test_rig_*.py and benchmarks/reliability.py to check what the printer got.
    _n = _of_lines("n", "The last line number assigned.")
    _history = _of_lines("history", "Sent lines by number, for resends.")
    _inflight = _of_lines("inflight", "Line numbers in flight, oldest first.")

    # ------------------------------------------------------------------ logging
    def _log(self, direction: str, text: str) -> None:
        if self.on_line is not None:
            self.on_line(direction, text, self.clock())

    def event(self, text: str) -> None:
        """Record a host event (``#`` line) in the log."""
        self._log("#", text)

    # ------------------------------------------------------------------ handshake
    def handshake(self, tries: int = 5, wait_s: float = 2.0) -> None:
        """Set the firmware's line counter and read its M115 answer, proving both arrived.

        Stale input (answers and auto-reports a previous session left unread) is dropped
        first. Then ``N0 M110 N0`` goes out numbered (a numbered M110 sets the counter on every
        Marlin and on OctoPrint's Virtual Printer, whatever it was before) and, after an
        ``ok``, ``N1 M115``. A plain ``ok`` proves nothing, since a stale one looks the same;
        the handshake is done at the first ``ok`` after the ``FIRMWARE_NAME`` line, which the
        firmware can only send after it processed our M110. ``start`` (boot banner) and a
        ``Resend`` (a line was garbled) end an attempt early; ``tries`` counts the attempts
        that got no answer or a reboot, while a live printer that asked for a resend is tried
        again up to ``_MAX_GARBLED_HANDSHAKES`` times (line noise is no reason to give up).
        An AVR board that has just been reset by opening the port needs a second or two
        before it listens. Before each retry the answers to the previous attempt are let
        through and dropped, so none of its ``ok`` can later be taken for the answer to a print
        line.
        """
        attempt = silent = garbled = 0
        while silent < tries and garbled < _MAX_GARBLED_HANDSHAKES:
            self._drop_stale_input(quiet_s=0.2 if attempt else 0.05, max_s=wait_s)
            attempt += 1
            outcome = self._handshake_attempt(wait_s)
            if outcome == "garbled":
                garbled += 1  # a live printer at this baud asks again: not a silent try
            elif outcome != "ok":
                silent += 1  # no answer within wait_s, or the board (re)booted
            else:
                if attempt > 1:  # late answers to an earlier attempt must not count
                    self._drop_stale_input(quiet_s=0.2, max_s=wait_s)
                self.event(f"handshake ok after {attempt} attempt(s)")
                self._port.start_writer()
                return
        port = getattr(self.ser, "port", self.ser)
        if garbled >= _MAX_GARBLED_HANDSHAKES:
            raise PrinterError(
                f"the printer on {port} asked {garbled} times to resend the handshake "
                "(line noise: check the cable, or a lower baud rate)"
            )
        raise PrinterError(
            f"no answer to N0 M110 / N1 M115 after {tries} tries on {port} "
            "(wrong baud rate, wrong port, or the board is still booting)"
        )

    def _handshake_attempt(self, wait_s: float) -> str:
        """One ``N0 M110 N0`` / ``N1 M115`` exchange: ``"ok"`` (counter set, firmware read),
        ``"garbled"`` (the printer asked for a resend), ``"reboot"`` or ``"silent"``."""
        self._port.write(P.numbered_line(0, "M110 N0"))
        m115_sent = False
        answer: list[str] | None = None
        deadline = self.timer() + wait_s
        while self.timer() < deadline:
            if self.error:
                raise PrinterError(self.error)
            if not self._handshake_lines:
                time.sleep(0.01)
                continue
            line = self._handshake_lines.popleft()
            if P.parse_resend(line) is not None:
                return "garbled"
            if P.is_start(line):
                return "reboot"
            if not m115_sent:
                if P.is_ok(line):  # perhaps stale: only the M115 answer proves the M110
                    self._port.write(P.numbered_line(1, "M115"))
                    m115_sent = True
                continue
            if "FIRMWARE_NAME" in line or "M115" in line:
                answer = []  # our M115's answer (or 'Unknown command "M115"') starts
            if answer is not None:
                answer.append(line)
                if P.is_ok(line):
                    with self._cond:
                        self._lines.n = 1
                        self.firmware = P.parse_m115(answer)
                        self._lines.follow_advanced_ok(line)
                        self.handshaken = True
                    return "ok"
        return "silent"

    def _drop_stale_input(self, quiet_s: float, max_s: float) -> None:
        """Wait until the port has been quiet for ``quiet_s`` (at most ``max_s``), then drop
        everything received so far. The reader thread drains the port continuously, so its
        queue holds all there was; flushing the OS buffer here (``reset_input_buffer``) would
        race the reader between its select and its read, which pyserial reports as a lost
        port ("readiness to read but returned no data": seen in benchmarks/reliability.py)."""
        deadline = self.timer() + max_s
        seen = -1
        while quiet_s > 0 and self.timer() < deadline and seen != len(self._handshake_lines):
            seen = len(self._handshake_lines)
            time.sleep(quiet_s)
        self._handshake_lines.clear()

    def start_writer(self) -> None:
        """Start sending without a handshake (:func:`attach`: listening, unnumbered)."""
        self._port.start_writer()

    def start_temperature_reports(self, interval_s: float = 1.0) -> str:
        """M155 auto-report when the firmware has it (Cap:AUTOREPORT_TEMP), else M105 polling."""
        if self.firmware.cap("AUTOREPORT_TEMP"):
            self.command(f"M155 S{max(1, round(interval_s))}")
            return "autoreport"
        self.set_polling(interval_s, ("M105",))
        return "polling"

    def set_polling(self, interval_s: float | None, commands: tuple[str, ...]) -> None:
        """Send ``commands`` every ``interval_s`` real seconds (None: stop polling)."""
        with self._cond:
            self._poll_interval_s = interval_s
            self._poll_cmds = commands
            self._next_poll = self.timer()
            self._cond.notify_all()

    # ------------------------------------------------------------------ commands
    def send(self, cmd: str) -> None:
        """Queue one command ahead of any print job lines (no wait for its answer)."""
        with self._cond:
            self._lines.queue(cmd)
            self._cond.notify_all()

    def command(self, cmd: str, timeout_s: float = 10.0) -> list[str]:
        """Send ``cmd`` and return the lines received until its ``ok`` (the ok line included)."""
        w = Waiter()
        with self._cond:
            self._lines.queue(cmd, w)
            self._cond.notify_all()
        if not w.event.wait(timeout_s):
            if self.error:
                raise PrinterError(self.error)
            raise PrinterError(f"no answer to {cmd!r} within {timeout_s:g} s")
        return w.lines

    def emergency_stop(self) -> None:
        """M112 at once, unnumbered (Marlin's emergency parser acts on it before the queue)."""
        self._port.write("M112")
        self.event("emergency stop (M112) sent")

    # ------------------------------------------------------------------ print job
    def start_print(self, lines: Iterable[str], name: str = "", total: int | None = None) -> None:
        """Stream G-code lines (comments and blanks are skipped, M110 is never forwarded)."""
        if not self.handshaken:
            raise PrinterError("handshake first (M110 got no ok yet)")
        if total is None and isinstance(lines, list | tuple):
            total = sum(1 for ln in lines if job_command(ln))
        cmds = (c for c in (job_command(ln) for ln in lines) if c)
        with self._cond:
            self._jobs.start(cmds, name, total)
        self.event(f"print started: {name} ({total if total is not None else '?'} lines)")

    def pause(self) -> None:
        with self._cond:
            self._jobs.pause()
        self.event("print paused")

    def resume(self) -> None:
        with self._cond:
            self._jobs.resume()
        self.event("print resumed")

    def cancel(self, cooldown: tuple[str, ...] = ("M104 S0", "M140 S0", "M107")) -> None:
        """Stop feeding the job and switch the heaters and the part fan off. With Marlin's
        emergency parser, M108 first breaks a running M109/M190 wait so the cooldown is not
        stuck behind it."""
        if self.firmware.cap("EMERGENCY_PARSER") and self.connected:
            with self._cond:
                self._lines.swallow_oks += 1  # the M108 line also reaches the queue and gets an ok
            self._port.write("M108")
        with self._cond:
            if not self.job.finished:
                self._jobs.finish("cancelled", "cancelled by the user")
            for c in cooldown:
                self._lines.queue(c)
            self._cond.notify_all()

    def wait_job(self, timeout_s: float | None = None) -> JobState:
        """Until the job is finished, or ``timeout_s`` real seconds; the job as it is then."""
        deadline = None if timeout_s is None else self.timer() + timeout_s
        with self._cond:
            while not self.job.finished:
                left = None if deadline is None else deadline - self.timer()
                if left is not None and left <= 0:
                    break
                self._cond.wait(0.1 if left is None else min(0.1, left))
            return self.job

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Until nothing is queued or in flight."""
        deadline = self.timer() + timeout_s
        with self._cond:
            while self._lines.busy() and self.timer() < deadline:
                if self.error:
                    return False
                self._cond.wait(0.05)
            return not self._lines.inflight and not self._lines.urgent

    def close(self) -> None:
        with self._cond:
            self._port.closing = True
            self._cond.notify_all()
        self._port.close()
        self.connected = False

    # ------------------------------------------------------------------ writer side
    def _next_text(self) -> str | None:
        """The writer thread's next line, waiting for a credit or a command; None: stop."""
        with self._cond:
            while not self._port.closing and self.connected:
                now = self.timer()
                self._fail(self._lines.check_timeouts(now))
                self._schedule_poll(now)
                item = self._lines.take(now)
                if item is not None:
                    n, cmd = item
                    return P.numbered_line(n, cmd) if self.numbered and n is not None else cmd
                self._cond.wait(0.05)
            return None

    def _schedule_poll(self, now: float) -> None:
        if self._poll_interval_s is None or now < self._next_poll:
            return
        self._next_poll = now + self._poll_interval_s
        self._lines.queue_unless_pending(self._poll_cmds)

    # ------------------------------------------------------------------ reader side
    def _on_line(self, line: str) -> None:
        """Log a received line (stamped once, here) and act on it."""
        t = self.clock()
        if self.on_line is not None:
            self.on_line("<", line, t)
        if not self.handshaken:
            self._handshake_lines.append(line)
            return
        now = self.timer()
        temps = P.parse_temperatures(line)
        with self._cond:
            self._lines.note_reply(line, now, temperature_report=temps is not None)
            if temps is not None:
                self.temps = temps.heaters
                self.temps_t_s = t
            self._dispatch(line, now)
            self._cond.notify_all()
        if temps is not None and self.on_temps is not None:
            self.on_temps(temps.heaters, t)

    def _dispatch(self, line: str, now: float) -> None:
        """One branch per kind of firmware reply (caller holds the lock)."""
        if P.is_ok(line):
            self._lines.on_ok(line, now)
        elif (n := P.parse_resend(line)) is not None:
            self._fail(self._lines.on_resend(n, now))
        elif P.is_busy(line):
            self._lines.last_progress = now
        elif line == "wait":
            self._lines.on_wait()
        elif P.is_start(line):
            self._on_reset()
        elif (err := P.error_text(line)) is not None:
            msg, fatal = err
            self._lines.last_progress = now
            self._lines.fw_error = line
            if fatal:
                self.error = f"printer error: {msg}"
                self._jobs.fail(f"{self.error} (at line {self.job.acked})")
        else:
            self._parse_info(line)

    def _parse_info(self, line: str) -> None:
        if (pos := P.parse_position(line)) is not None:
            self.position = pos
        elif (sd := P.parse_sd_progress(line)) is not None:
            self.sd_progress = sd or None
        elif (m73 := P.parse_m73(line)) is not None:
            self.progress_pct = m73[0]
        elif "Print time" in line and (pt := P.parse_print_time_s(line)) is not None:
            self.print_time_s = pt

    # ------------------------------------------------------------------ failures
    def _fail(self, error: str | None) -> None:
        """Record the host's error (None: nothing failed)."""
        if error is not None:
            self.error = error

    def _on_reset(self) -> None:
        self.error = "the printer reset (it printed 'start')"
        self._lines.clear()
        self._jobs.fail(
            f"the printer reset during the print (it printed 'start') after "
            f"{self.job.acked} acknowledged lines; the print is stopped and cannot be "
            "resumed from the host"
        )

    def _lost(self, why: str) -> None:
        with self._cond:
            if self.error is None:
                self.error = f"serial port lost ({why})"
            self.connected = False
            self._jobs.fail(f"{self.error}; print stopped at line {self.job.acked}")
            self._cond.notify_all()


def job_command(line: str) -> str:
    """The command a G-code file line sends in a job ("" for none: blank, comment, M110).

    Shared with the session reader and the OctoPrint check so that all count the same lines.
    """
    c = P.strip_gcode(line)
    if not c or c.upper().startswith("M110"):
        return ""
    return c


def open_serial(port: str, baud: int, *, dtr: bool | None = None):
    """Open a serial port for the host (read timeout 0.1 s so the reader thread can stop).

    The port is locked (``exclusive``, an advisory ``flock`` on POSIX): a second logger on a
    busy port is refused instead of taking the printer over mid-print.
    ``dtr=False`` asks the driver not to raise DTR, which on some systems avoids the
    auto-reset of Arduino-based boards; on Linux the kernel may still pulse it.
    """
    import serial  # pyserial

    try:
        ser = serial.Serial()
        ser.port = port
        ser.baudrate = baud
        ser.timeout = 0.1
        ser.write_timeout = 5.0
        ser.exclusive = True
        if dtr is not None:
            ser.dtr = dtr
        ser.open()
        return ser
    except (serial.SerialException, OSError, ValueError) as exc:
        if "exclusively lock" in str(exc):
            raise PrinterError(
                f"{port} is in use by another program (another 'rig log', OctoPrint, a "
                "slicer); close it first"
            ) from exc
        raise PrinterError(f"cannot open {port} at {baud} baud: {exc}") from exc


def connect(
    port: str,
    baud: int | None = None,
    *,
    on_line: LineCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    handshake_tries: int = 3,
    handshake_wait_s: float = 2.0,
    **host_kw,
) -> MarlinHost:
    """Open ``port`` (at ``baud``, or trying 250000 then 115200) and handshake (M110, M115).

    Opening the port resets most Arduino-Mega based boards (RAMPS, Melzi, Creality 1.1.x):
    never use this on a printer that is printing from SD; use :func:`attach` instead.
    """
    errors = []
    for b in (baud,) if baud else DEFAULT_BAUDS:
        try:
            ser = open_serial(port, b)
        except PrinterError as exc:
            if baud:
                raise
            errors.append(str(exc))
            continue
        host = MarlinHost(ser, on_line=on_line, clock=clock, **host_kw)
        host.event(f"opened {port} at {b} baud")
        try:
            host.handshake(tries=handshake_tries, wait_s=handshake_wait_s)
        except PrinterError as exc:
            errors.append(f"{b}: {exc}")
            host.close()
            continue
        host.baud = b
        return host
    raise PrinterError(f"no Marlin printer answering on {port}: " + "; ".join(errors))


ATTACH_WARNING = (
    "Opening a serial port raises DTR, which resets most Arduino-Mega based boards (RAMPS, "
    "Melzi, older Creality boards) and so kills a running print. Attach only to boards with a "
    "native USB or a USB-serial chip whose reset is not wired to DTR, or cut/disable that reset."
)


def attach(
    port: str,
    baud: int,
    *,
    on_line: LineCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 2.0,
    **host_kw,
) -> MarlinHost:
    """Listen to a printer that prints from its SD card: no M110, no line numbers; poll M105
    and M27 every ``poll_s``. See :data:`ATTACH_WARNING`."""
    ser = open_serial(port, baud, dtr=False)
    host = MarlinHost(ser, on_line=on_line, clock=clock, **host_kw)
    host.event(f"attached to {port} at {baud} baud (listen only). {ATTACH_WARNING}")
    host.numbered = False
    host.handshaken = True
    host.start_writer()
    host.set_polling(poll_s, ("M105", "M27"))
    return host
