"""A Marlin/RepRap host over pyserial: handshake, numbered lines, resends, streaming.

Like Klipper's ``serialhdl`` this module knows only transport and protocol, nothing of energy.
One reader thread stamps every received line once (with the injected ``clock``) and one
writer thread sends when the firmware has room: by default one line in flight, each ``ok``
returns one credit. The parsing itself is in :mod:`.protocol` (pure functions).

Recovery rules (what real firmware does, see ``tests/test_rig_host.py``):

- One line in flight by default; when the firmware answers with ADVANCED_OK
  (``ok N12 P15 B3``) the window follows its free command slots (``B``), up to ``max_window``.
- ``Resend: N`` (or ``rs N``): lines from N on are sent again from the history. Marlin follows
  a resend request with an ``ok``; some firmwares do not, so if no ``ok`` arrives within
  ``resend_grace_s`` the credit is restored anyway, and that firmware's habit is remembered.
  That ``ok`` belongs to the rejection, never to a line.
- ``Resend: N`` beyond the last line sent: the firmware's counter is not ours (a previous
  session, a stray M110), so every line in flight was rejected. The host sends a numbered
  ``M110`` that sets the counter to the line before the first unacknowledged one and resends
  from there; after ``MAX_RESYNCS`` tries in a row the print ends in error with the firmware's
  message. A print is done only when every line was acknowledged in order.
- No ``ok`` for ``timeout_s`` (``echo:busy:`` lines and heating reports during M109/M190
  restart the clock), or a ``wait`` (idle printer) while a line is in flight: the ``ok`` is
  assumed lost, M105 is sent to nudge the printer, and the
  stream goes on; after ``max_nudges`` nudges in a row without an answer the job fails.
- ``start`` after the handshake means the board reset: the print is stopped with a message.
- The port vanishing (USB pulled) stops everything cleanly; what was logged stays logged.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import PrinterError
from . import protocol as P

DEFAULT_BAUDS = (250000, 115200)
# Resynchronisations (numbered M110) tried in a row, without a line acknowledged in between,
# before the print is given up as rejected.
MAX_RESYNCS = 3
# Commands the firmware may legitimately take long to acknowledge; while one of them is the
# oldest line in flight, any received line (temperature reports) counts as a sign of life.
_BLOCKING = ("M109", "M190", "M191", "M116", "M400", "G28", "G29", "G4", "M303", "M600")
_MAX_GARBLED_HANDSHAKES = 10  # handshakes the printer asked to resend before giving up
_HEATING_WAITS = ("M109", "M190", "M191", "M116")  # their reports say ``W:`` while waiting


LineCallback = Callable[[str, str, float], None]  # (direction ">"|"<"|"#", text, t_s)


@dataclass
class JobState:
    name: str = ""
    total: int | None = None  # non-empty command lines, when known
    sent: int = 0
    acked: int = 0
    state: str = "idle"  # idle | printing | paused | done | cancelled | error
    message: str = ""
    t_start_s: float | None = None
    t_end_s: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "error")

    @property
    def progress(self) -> float | None:
        return self.acked / self.total if self.total else None


@dataclass
class _Sent:
    cmd: str
    job: bool
    waiter: _Waiter | None = None
    acked: bool = False


@dataclass
class _Waiter:
    lines: list[str] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)


class MarlinHost:
    """Host for one printer on one serial port (a pyserial ``Serial`` or anything like it).

    Use :func:`connect` to open a port by name; construct directly with an open serial object.
    ``on_line(direction, text, t_s)`` receives every line sent (``>``), received (``<``) and
    every host event (``#``), stamped with ``clock()``, so a logger records everything.
    """

    def __init__(  # noqa: PLR0915 - host state in one place; MarlinHost split planned (issue 15 item 4)
        self,
        ser,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_line: LineCallback | None = None,
        timeout_s: float = 10.0,
        resend_grace_s: float = 0.5,
        max_nudges: int = 5,
        window: int = 1,
        max_window: int = 4,
        history: int = 5000,
    ) -> None:
        self.ser = ser
        self.clock = clock
        self.on_line = on_line
        self.timeout_s = timeout_s
        self.resend_grace_s = resend_grace_s
        self.max_nudges = max_nudges
        self.window = max(1, window)
        # With ADVANCED_OK ("ok N12 P15 B3") the window follows the free command slots B,
        # up to max_window; without it the window stays as given (1: one line in flight).
        self.max_window = max(self.window, max_window)
        self._history_len = history
        self._cond = threading.Condition()
        self._n = 0
        self._history: dict[int, _Sent] = {}
        # line numbers in flight, oldest first; None is a resynchronising M110 (no history line)
        self._inflight: collections.deque[int | None] = collections.deque()
        self._credits = self.window
        self._resend_from: int | None = None
        self._resync_to: int | None = None  # a numbered "M110 N<k>" to send before anything
        self._resyncs = 0  # in a row, without a line acknowledged in between
        self._fw_error = ""  # the firmware's last error line, for the message of a failure
        self._swallow_oks = 0  # oks owed to lines sent outside the numbering (M108)
        self._resend_wait_ok_since: float | None = None
        self.ok_after_resend: bool | None = None  # learned from the firmware
        self._urgent: collections.deque[tuple[str, _Waiter | None]] = collections.deque()
        self._job_iter: Iterable[str] | None = None
        self.job = JobState()
        self._last_progress = time.monotonic()
        self._nudges = 0
        self._closing = False
        self.connected = False
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
        self.advanced_ok: P.AdvancedOk | None = None
        self.resends = 0
        self.timeouts = 0
        self.on_temps: Callable[[dict[str, P.HeaterReading], float], None] | None = None
        self._poll_interval_s: float | None = None
        self._poll_cmds: tuple[str, ...] = ()
        self._next_poll = 0.0
        self._handshake_lines: collections.deque[str] = collections.deque()
        self._reader = threading.Thread(target=self._read_loop, name="marlin-read", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="marlin-write", daemon=True)
        self.connected = True
        self._reader.start()

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
                self._writer.start()
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
        self._raw_write(P.numbered_line(0, "M110 N0"))
        m115_sent = False
        answer: list[str] | None = None
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
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
                    self._raw_write(P.numbered_line(1, "M115"))
                    m115_sent = True
                continue
            if "FIRMWARE_NAME" in line or "M115" in line:
                answer = []  # our M115's answer (or 'Unknown command "M115"') starts
            if answer is not None:
                answer.append(line)
                if P.is_ok(line):
                    with self._cond:
                        self._n = 1
                        self.firmware = P.parse_m115(answer)
                        self._follow_advanced_ok(line)
                        self.handshaken = True
                    return "ok"
        return "silent"

    def _drop_stale_input(self, quiet_s: float, max_s: float) -> None:
        """Wait until the port has been quiet for ``quiet_s`` (at most ``max_s``), then drop
        everything received so far. The reader thread drains the port continuously, so its
        queue holds all there was; flushing the OS buffer here (``reset_input_buffer``) would
        race the reader between its select and its read, which pyserial reports as a lost
        port ("readiness to read but returned no data": seen in benchmarks/reliability.py)."""
        deadline = time.monotonic() + max_s
        seen = -1
        while quiet_s > 0 and time.monotonic() < deadline and seen != len(self._handshake_lines):
            seen = len(self._handshake_lines)
            time.sleep(quiet_s)
        self._handshake_lines.clear()

    def start_temperature_reports(self, interval_s: float = 1.0) -> str:
        """M155 auto-report when the firmware has it (Cap:AUTOREPORT_TEMP), else M105 polling."""
        if self.firmware.cap("AUTOREPORT_TEMP"):
            self.command(f"M155 S{max(1, round(interval_s))}")
            return "autoreport"
        self.set_polling(interval_s, ("M105",))
        return "polling"

    def set_polling(self, interval_s: float | None, commands: tuple[str, ...]) -> None:
        with self._cond:
            self._poll_interval_s = interval_s
            self._poll_cmds = commands
            self._next_poll = time.monotonic()
            self._cond.notify_all()

    # ------------------------------------------------------------------ commands
    def send(self, cmd: str) -> None:
        """Queue one command ahead of any print job lines (no wait for its answer)."""
        with self._cond:
            self._urgent.append((cmd, None))
            self._cond.notify_all()

    def command(self, cmd: str, timeout_s: float = 10.0) -> list[str]:
        """Send ``cmd`` and return the lines received until its ``ok`` (the ok line included)."""
        w = _Waiter()
        with self._cond:
            self._urgent.append((cmd, w))
            self._cond.notify_all()
        if not w.event.wait(timeout_s):
            if self.error:
                raise PrinterError(self.error)
            raise PrinterError(f"no answer to {cmd!r} within {timeout_s:g} s")
        return w.lines

    def emergency_stop(self) -> None:
        """M112 at once, unnumbered (Marlin's emergency parser acts on it before the queue)."""
        self._raw_write("M112")
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
            if self.job.state in ("printing", "paused"):
                raise PrinterError(f"a print is already running ({self.job.name})")
            self.job = JobState(name=name, total=total, state="printing", t_start_s=self.clock())
            self._job_iter = iter(cmds)
            self._cond.notify_all()
        self.event(f"print started: {name} ({total if total is not None else '?'} lines)")

    def pause(self) -> None:
        with self._cond:
            if self.job.state == "printing":
                self.job.state = "paused"
        self.event("print paused")

    def resume(self) -> None:
        with self._cond:
            if self.job.state == "paused":
                self.job.state = "printing"
                self._cond.notify_all()
        self.event("print resumed")

    def cancel(self, cooldown: tuple[str, ...] = ("M104 S0", "M140 S0", "M107")) -> None:
        """Stop feeding the job and switch the heaters and the part fan off. With Marlin's
        emergency parser, M108 first breaks a running M109/M190 wait so the cooldown is not
        stuck behind it."""
        if self.firmware.cap("EMERGENCY_PARSER") and self.connected:
            with self._cond:
                self._swallow_oks += 1  # the M108 line also reaches the queue and gets an ok
            self._raw_write("M108")
        with self._cond:
            if not self.job.finished:
                self._finish_job("cancelled", "cancelled by the user")
            for c in cooldown:
                self._urgent.append((c, None))
            self._cond.notify_all()

    def wait_job(self, timeout_s: float | None = None) -> JobState:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self.job.finished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(0.1 if left is None else min(0.1, left))
            return self.job

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Until nothing is queued or in flight."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._inflight or self._urgent or self._resend_from is not None) and (
                time.monotonic() < deadline
            ):
                if self.error:
                    return False
                self._cond.wait(0.05)
            return not self._inflight and not self._urgent

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001 - closing a vanished port may fail; nothing to do
            pass
        for t in (self._reader, self._writer):
            if t.is_alive() and t is not threading.current_thread():
                t.join(timeout=2.0)
        self.connected = False

    # ------------------------------------------------------------------ internals
    def _finish_job(self, state: str, message: str) -> None:
        # caller holds self._cond
        self.job.state = state
        self.job.message = message
        self.job.t_end_s = self.clock()
        self._job_iter = None
        self._cond.notify_all()
        self._log("#", f"print {state}: {message}")

    def _raw_write(self, text: str) -> None:
        self._log(">", text)
        try:
            self.ser.write((text + "\n").encode("ascii", "replace"))
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types
            self._lost(f"write failed: {exc}")

    def _lost(self, why: str) -> None:
        with self._cond:
            if self.error is None:
                self.error = f"serial port lost ({why})"
            self.connected = False
            if self.job.state in ("printing", "paused"):
                self._finish_job("error", f"{self.error}; print stopped at line {self.job.acked}")
            self._cond.notify_all()

    def _read_loop(self) -> None:
        buf = b""
        while not self._closing:
            try:
                chunk = self.ser.read(max(1, getattr(self.ser, "in_waiting", 0) or 1))
            except Exception as exc:  # noqa: BLE001 - SerialException / OSError(EIO)
                if not self._closing:
                    self._lost(str(exc) or type(exc).__name__)
                return
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("ascii", "replace").strip("\r\x00 ")
                if line:
                    self._on_line(line)

    def _on_line(self, line: str) -> None:  # noqa: C901, PLR0912 - one branch per firmware reply kind; MarlinHost split planned (issue 15 item 4)
        t = self.clock()
        if self.on_line is not None:
            self.on_line("<", line, t)
        if not self.handshaken:
            self._handshake_lines.append(line)
            return
        now = time.monotonic()
        temps = P.parse_temperatures(line)
        with self._cond:
            oldest = self._history.get(self._inflight[0]) if self._inflight else None
            if oldest is not None and oldest.waiter is not None:
                oldest.waiter.lines.append(line)
            if temps is not None:
                self.temps = temps.heaters
                self.temps_t_s = t
                if oldest is not None and self._report_shows_progress(oldest.cmd, line):
                    self._last_progress = now
            if P.is_ok(line):
                self._on_ok(line, now)
            elif (n := P.parse_resend(line)) is not None:
                self._on_resend(n, now)
            elif P.is_busy(line):
                self._last_progress = now
            elif line == "wait":
                # an idle printer (Marlin 1.0 style) while we wait for an ok: it lost our line
                # or its ok; act now instead of waiting out the timeout
                if self._inflight and self._resend_wait_ok_since is None:
                    self._last_progress = -math.inf
            elif P.is_start(line):
                self._on_reset()
            elif (err := P.error_text(line)) is not None:
                msg, fatal = err
                self._last_progress = now
                self._fw_error = line
                if fatal:
                    self.error = f"printer error: {msg}"
                    if self.job.state in ("printing", "paused"):
                        self._finish_job("error", f"{self.error} (at line {self.job.acked})")
            else:
                self._parse_info(line)
            self._cond.notify_all()
        if temps is not None and self.on_temps is not None:
            self.on_temps(temps.heaters, t)

    @staticmethod
    def _report_shows_progress(oldest_cmd: str, line: str) -> bool:
        """Whether a temperature line means the long command in flight is still running. A
        heating wait's own reports carry ``W:``; auto-reports (M155) go on after the wait
        ended, so counting them would hide a lost ``ok`` for ever."""
        word = oldest_cmd.split(" ", 1)[0]
        if word in _HEATING_WAITS:
            return P.is_heating_wait_report(line)
        return word in _BLOCKING

    def _parse_info(self, line: str) -> None:
        if (pos := P.parse_position(line)) is not None:
            self.position = pos
        elif (sd := P.parse_sd_progress(line)) is not None:
            self.sd_progress = sd or None
        elif (m73 := P.parse_m73(line)) is not None:
            self.progress_pct = m73[0]
        elif "Print time" in line and (pt := P.parse_print_time_s(line)) is not None:
            self.print_time_s = pt

    def _on_ok(self, line: str, now: float) -> None:
        self._last_progress = now
        self._nudges = 0
        if self._resend_wait_ok_since is not None:
            # the ok that belongs to the rejection and its resend request, not to a line
            self._resend_wait_ok_since = None
            self.ok_after_resend = True
            self._credits = min(self.window, self._credits + 1)
            return
        self._follow_advanced_ok(line)
        if self._swallow_oks > 0:
            self._swallow_oks -= 1
            return
        self._credits = min(self.window, self._credits + 1)
        if self._inflight:
            n = self._inflight.popleft()
            if n is not None:
                self._resyncs = 0
            self._acknowledge(self._history.get(n))
        self._maybe_job_done()

    def _follow_advanced_ok(self, line: str) -> None:
        """With ADVANCED_OK ("ok N12 P15 B3") the window follows the free command slots B."""
        adv = P.parse_advanced_ok(line)
        if adv is not None:
            self.advanced_ok = adv
            new = max(1, min(self.max_window, adv.buffer_free))
            if new != self.window:
                self._credits += new - self.window
                self.window = new

    def _acknowledge(self, sent: _Sent | None) -> None:
        """Count a line once, even if a timeout assumed it done and it was resent later."""
        if sent is None or sent.acked:
            return
        sent.acked = True
        if sent.waiter is not None:
            sent.waiter.event.set()
        if sent.job:
            self.job.acked += 1

    def _on_resend(self, n: int, now: float) -> None:
        self._last_progress = now
        self.resends += 1
        if n > self._n:
            # The firmware expects a line never sent. n == last sent + 1: it has every line and
            # rejected something else (line noise). Further: its counter is not ours.
            self._expect_resend_ok(now)
            resync_pending = self._resync_to is not None or None in self._inflight
            if n > self._n + 1 and not resync_pending:
                self._resync(n)
            return
        if n not in self._history:
            self.error = f"printer asked to resend line {n}, which is no longer kept"
            if self.job.state in ("printing", "paused"):
                self._finish_job("error", self.error)
            return
        while self._inflight and (k := self._inflight[-1]) is not None and k >= n:
            self._inflight.pop()
        self._resend_from = n if self._resend_from is None else min(n, self._resend_from)
        self._expect_resend_ok(now)

    def _expect_resend_ok(self, now: float) -> None:
        """The ok after a rejection returns the credit of the rejected line and acks nothing."""
        if self.ok_after_resend is False:
            self._credits = min(self.window, self._credits + 1)
        else:
            self._resend_wait_ok_since = now

    def _resync(self, expected: int) -> None:
        """Set the firmware's counter to the line before the first unacknowledged one with a
        numbered M110 and resend from there (every line in flight was rejected)."""
        first = next((k for k in self._inflight if k is not None), self._n + 1)
        if self._resend_from is not None:
            first = min(first, self._resend_from)
        self._resyncs += 1
        if self._resyncs > MAX_RESYNCS:
            self.error = (
                f"printer rejects line {first} ({self._fw_error or f'Resend: {expected}'}), "
                f"still after {MAX_RESYNCS} resynchronisations with M110"
            )
            self._resend_from = None
            self._inflight.clear()
            if self.job.state in ("printing", "paused"):
                self._finish_job("error", f"{self.error}; {self.job.acked} lines acknowledged")
            return
        self._inflight.clear()
        self._resend_from = first if first <= self._n else None
        self._resync_to = first - 1
        self._log(
            "#",
            f"printer expects line {expected} but line {self._n} was the last sent: "
            f"resynchronising with M110 N{first - 1}, then resending from line {first}",
        )

    def _on_reset(self) -> None:
        self.error = "the printer reset (it printed 'start')"
        self._inflight.clear()
        self._resend_from = None
        self._resync_to = None
        self._urgent.clear()
        if self.job.state in ("printing", "paused"):
            self._finish_job(
                "error",
                f"the printer reset during the print (it printed 'start') after "
                f"{self.job.acked} acknowledged lines; the print is stopped and cannot be "
                "resumed from the host",
            )

    def _maybe_job_done(self) -> None:
        if (
            self.job.state == "printing"
            and self._job_iter is None
            and not any(self._history[n].job for n in self._inflight if n in self._history)
            and self._resend_from is None
            and self._resync_to is None
            and None not in self._inflight
        ):
            self._finish_job("done", f"{self.job.acked} lines acknowledged")

    def _next_command(self) -> tuple[int | None, str] | None:
        """Pick what to send next (line number, command; None: a complete numbered M110);
        caller holds the lock and has a credit."""
        if self._resync_to is not None:
            k, self._resync_to = self._resync_to, None
            return None, P.numbered_line(k, f"M110 N{k}")
        if self._resend_from is not None:
            n = self._resend_from
            self._resend_from = n + 1 if n + 1 <= self._n else None
            return n, self._history[n].cmd
        if self._urgent:
            cmd, waiter = self._urgent.popleft()
            return self._assign(cmd, False, waiter), cmd
        if self._job_iter is not None and self.job.state == "printing":
            try:
                cmd = next(self._job_iter)
            except StopIteration:
                self._job_iter = None
                self._maybe_job_done()
                return None
            self.job.sent += 1
            return self._assign(cmd, True, None), cmd
        return None

    def _assign(self, cmd: str, job: bool, waiter: _Waiter | None) -> int:
        self._n += 1
        self._history[self._n] = _Sent(cmd, job, waiter)
        old = self._n - self._history_len
        if old in self._history:
            del self._history[old]
        return self._n

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                if self._closing or not self.connected:
                    return
                now = time.monotonic()
                self._check_timeouts(now)
                self._schedule_poll(now)
                item = None
                if self._credits > 0:
                    item = self._next_command()
                if item is None:
                    self._cond.wait(0.05)
                    continue
                n, cmd = item
                self._credits -= 1
                self._inflight.append(n)
                if len(self._inflight) == 1:
                    self._last_progress = now
                text = P.numbered_line(n, cmd) if self.numbered and n is not None else cmd
            self._raw_write(text)

    def _schedule_poll(self, now: float) -> None:
        if self._poll_interval_s is None or now < self._next_poll:
            return
        self._next_poll = now + self._poll_interval_s
        queued = {c for c, _ in self._urgent}
        inflight = {self._history[n].cmd for n in self._inflight if n in self._history}
        for c in self._poll_cmds:
            if c not in queued and c not in inflight:
                self._urgent.append((c, None))

    def _check_timeouts(self, now: float) -> None:
        if self._resend_wait_ok_since is not None:
            if now - self._resend_wait_ok_since > self.resend_grace_s:
                self._resend_wait_ok_since = None
                self.ok_after_resend = False
                self._credits = min(self.window, self._credits + 1)
                self._log("#", "no ok after resend request; continuing without it")
            return
        if not self._inflight or now - self._last_progress < self.timeout_s:
            return
        self.timeouts += 1
        self._nudges += 1
        if self._nudges > self.max_nudges:
            self.error = f"printer not answering: {self.max_nudges} nudges without reply"
            if not self.job.finished and self.job.state != "idle":
                self._finish_job("error", self.error)
            self._inflight.clear()
            return
        lost = self._inflight.popleft()
        self._acknowledge(self._history.get(lost))
        self._credits = min(self.window, self._credits + 1)
        self._last_progress = now
        what = "the resynchronising M110" if lost is None else f"line {lost}"
        self._log("#", f"timeout: no ok for {what} within {self.timeout_s:g} s; sending M105 nudge")
        self._urgent.appendleft(("M105", None))
        self._maybe_job_done()


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
    host._writer.start()
    host.set_polling(poll_s, ("M105", "M27"))
    return host
