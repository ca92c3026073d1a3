"""The line window of the Marlin host: numbering, history, lines in flight, credits, resends.

What to send next and what an ``ok``, a ``Resend:`` or a silence means for the lines in
flight (the recovery rules are in :mod:`.marlin`'s docstring). No I/O and no lock of its own:
the host calls every method holding its lock, feeds it the firmware's replies and writes what
:meth:`LineWindow.next_command` returns. Times (``now``) are the host's real-time ``timer``.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import protocol as P
from .job import JobControl

# Resynchronisations (numbered M110) tried in a row, without a line acknowledged in between,
# before the print is given up as rejected.
MAX_RESYNCS = 3
# Commands the firmware may legitimately take long to acknowledge; while one of them is the
# oldest line in flight, any received line (temperature reports) counts as a sign of life.
_BLOCKING = ("M109", "M190", "M191", "M116", "M400", "G28", "G29", "G4", "M303", "M600")
_HEATING_WAITS = ("M109", "M190", "M191", "M116")  # their reports say ``W:`` while waiting


@dataclass
class Waiter:
    """Collects the lines answering one :meth:`~.marlin.MarlinHost.command` until its ``ok``."""

    lines: list[str] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)


@dataclass
class Sent:
    cmd: str
    job: bool
    waiter: Waiter | None = None
    acked: bool = False


class LineWindow:
    """Numbered lines in flight and their recovery (caller holds the host's lock).

    One line in flight by default (``window``); with ADVANCED_OK the window follows the
    firmware's free command slots, up to ``max_window``. ``history`` lines are kept for
    resends. Methods that can give up return the host's error message (else None) and end a
    running job themselves; ``event`` writes a ``#`` line to the log.
    """

    def __init__(
        self,
        jobs: JobControl,
        event: Callable[[str], None],
        *,
        now: float,
        timeout_s: float,
        resend_grace_s: float,
        max_nudges: int,
        window: int,
        max_window: int,
        history: int,
    ) -> None:
        self.jobs = jobs
        self._event = event
        self.timeout_s = timeout_s
        self.resend_grace_s = resend_grace_s
        self.max_nudges = max_nudges
        self.window = max(1, window)
        # With ADVANCED_OK ("ok N12 P15 B3") the window follows the free command slots B,
        # up to max_window; without it the window stays as given (1: one line in flight).
        self.max_window = max(self.window, max_window)
        self.history_len = history
        self.n = 0  # the last line number assigned
        self.history: dict[int, Sent] = {}
        # line numbers in flight, oldest first; None is a resynchronising M110 (no history line)
        self.inflight: collections.deque[int | None] = collections.deque()
        self.credits = self.window
        self.resend_from: int | None = None
        self.resync_to: int | None = None  # a numbered "M110 N<k>" to send before anything
        self.resyncs = 0  # in a row, without a line acknowledged in between
        self.fw_error = ""  # the firmware's last error line, for the message of a failure
        self.swallow_oks = 0  # oks owed to lines sent outside the numbering (M108)
        self.resend_wait_ok_since: float | None = None
        self.ok_after_resend: bool | None = None  # learned from the firmware
        self.urgent: collections.deque[tuple[str, Waiter | None]] = collections.deque()
        self.last_progress = now
        self.nudges = 0
        self.advanced_ok: P.AdvancedOk | None = None
        self.resends = 0
        self.timeouts = 0

    # ------------------------------------------------------------------ queue
    def queue(self, cmd: str, waiter: Waiter | None = None) -> None:
        """Send ``cmd`` ahead of any job line."""
        self.urgent.append((cmd, waiter))

    def queue_unless_pending(self, cmds: tuple[str, ...]) -> None:
        """Queue each of ``cmds`` not already queued or in flight (polling never piles up)."""
        queued = {c for c, _ in self.urgent}
        inflight = {self.history[n].cmd for n in self.inflight if n in self.history}
        for c in cmds:
            if c not in queued and c not in inflight:
                self.urgent.append((c, None))

    def busy(self) -> bool:
        """Something queued, in flight or to be resent."""
        return bool(self.inflight or self.urgent or self.resend_from is not None)

    def clear(self) -> None:
        """Forget everything in flight or queued (the firmware reset)."""
        self.inflight.clear()
        self.resend_from = None
        self.resync_to = None
        self.urgent.clear()

    # ------------------------------------------------------------------ sending
    def next_command(self) -> tuple[int | None, str] | None:
        """Pick what to send next (line number, command; None: a complete numbered M110)."""
        if self.resync_to is not None:
            k, self.resync_to = self.resync_to, None
            return None, P.numbered_line(k, f"M110 N{k}")
        if self.resend_from is not None:
            n = self.resend_from
            self.resend_from = n + 1 if n + 1 <= self.n else None
            return n, self.history[n].cmd
        if self.urgent:
            cmd, waiter = self.urgent.popleft()
            return self._assign(cmd, False, waiter), cmd
        if self.jobs.feeding:
            cmd = self.jobs.next_line()
            if cmd is None:
                self.finish_job_if_done()
                return None
            return self._assign(cmd, True, None), cmd
        return None

    def take(self, now: float) -> tuple[int | None, str] | None:
        """The next line to write if there is a credit for it, counted as in flight."""
        item = self.next_command() if self.credits > 0 else None
        if item is not None:
            self.credits -= 1
            self.inflight.append(item[0])
            if len(self.inflight) == 1:
                self.last_progress = now
        return item

    def _assign(self, cmd: str, job: bool, waiter: Waiter | None) -> int:
        self.n += 1
        self.history[self.n] = Sent(cmd, job, waiter)
        old = self.n - self.history_len
        if old in self.history:
            del self.history[old]
        return self.n

    def finish_job_if_done(self) -> None:
        """The job is done when no job line is in flight or due to be sent again."""
        self.jobs.finish_if_done(
            not any(self.history[n].job for n in self.inflight if n in self.history)
            and self.resend_from is None
            and self.resync_to is None
            and None not in self.inflight
        )

    # ------------------------------------------------------------------ replies
    def note_reply(self, line: str, now: float, temperature_report: bool) -> None:
        """Give a received line to the command waiting for its answer; a temperature report
        during a long command counts as a sign of life."""
        oldest = self.history.get(self.inflight[0]) if self.inflight else None
        if oldest is None:
            return
        if oldest.waiter is not None:
            oldest.waiter.lines.append(line)
        if temperature_report and _report_shows_progress(oldest.cmd, line):
            self.last_progress = now

    def on_wait(self) -> None:
        """An idle printer (Marlin 1.0 style ``wait``) while we wait for an ok: it lost our line
        or its ok; act now instead of waiting out the timeout."""
        if self.inflight and self.resend_wait_ok_since is None:
            self.last_progress = -math.inf

    def on_ok(self, line: str, now: float) -> None:
        self.last_progress = now
        self.nudges = 0
        if self.resend_wait_ok_since is not None:
            # the ok that belongs to the rejection and its resend request, not to a line
            self.resend_wait_ok_since = None
            self.ok_after_resend = True
            self._return_credit()
            return
        self.follow_advanced_ok(line)
        if self.swallow_oks > 0:
            self.swallow_oks -= 1
            return
        self._return_credit()
        if self.inflight:
            n = self.inflight.popleft()
            if n is not None:
                self.resyncs = 0
            self._acknowledge(self.history.get(n))
        self.finish_job_if_done()

    def follow_advanced_ok(self, line: str) -> None:
        """With ADVANCED_OK ("ok N12 P15 B3") the window follows the free command slots B."""
        adv = P.parse_advanced_ok(line)
        if adv is not None:
            self.advanced_ok = adv
            new = max(1, min(self.max_window, adv.buffer_free))
            if new != self.window:
                self.credits += new - self.window
                self.window = new

    def _return_credit(self) -> None:
        self.credits = min(self.window, self.credits + 1)

    def _acknowledge(self, sent: Sent | None) -> None:
        """Count a line once, even if a timeout assumed it done and it was resent later."""
        if sent is None or sent.acked:
            return
        sent.acked = True
        if sent.waiter is not None:
            sent.waiter.event.set()
        if sent.job:
            self.jobs.line_acked()

    def on_resend(self, n: int, now: float) -> str | None:
        """``Resend: n``: resend from the history, or resynchronise a counter that is not ours."""
        self.last_progress = now
        self.resends += 1
        if n > self.n:
            # The firmware expects a line never sent. n == last sent + 1: it has every line and
            # rejected something else (line noise). Further: its counter is not ours.
            self._expect_resend_ok(now)
            resync_pending = self.resync_to is not None or None in self.inflight
            if n > self.n + 1 and not resync_pending:
                return self._resync(n)
            return None
        if n not in self.history:
            error = f"printer asked to resend line {n}, which is no longer kept"
            self.jobs.fail(error)
            return error
        while self.inflight and (k := self.inflight[-1]) is not None and k >= n:
            self.inflight.pop()
        self.resend_from = n if self.resend_from is None else min(n, self.resend_from)
        self._expect_resend_ok(now)
        return None

    def _expect_resend_ok(self, now: float) -> None:
        """The ok after a rejection returns the credit of the rejected line and acks nothing."""
        if self.ok_after_resend is False:
            self._return_credit()
        else:
            self.resend_wait_ok_since = now

    def _resync(self, expected: int) -> str | None:
        """Set the firmware's counter to the line before the first unacknowledged one with a
        numbered M110 and resend from there (every line in flight was rejected)."""
        first = next((k for k in self.inflight if k is not None), self.n + 1)
        if self.resend_from is not None:
            first = min(first, self.resend_from)
        self.resyncs += 1
        if self.resyncs > MAX_RESYNCS:
            error = (
                f"printer rejects line {first} ({self.fw_error or f'Resend: {expected}'}), "
                f"still after {MAX_RESYNCS} resynchronisations with M110"
            )
            self.resend_from = None
            self.inflight.clear()
            self.jobs.fail(f"{error}; {self.jobs.job.acked} lines acknowledged")
            return error
        self.inflight.clear()
        self.resend_from = first if first <= self.n else None
        self.resync_to = first - 1
        self._event(
            f"printer expects line {expected} but line {self.n} was the last sent: "
            f"resynchronising with M110 N{first - 1}, then resending from line {first}"
        )
        return None

    # ------------------------------------------------------------------ silence
    def check_timeouts(self, now: float) -> str | None:
        """Give up waiting for the ok after a resend request (``resend_grace_s``), or, after
        ``timeout_s`` without progress, assume the oldest line's ok lost and nudge with M105."""
        if self.resend_wait_ok_since is not None:
            if now - self.resend_wait_ok_since > self.resend_grace_s:
                self.resend_wait_ok_since = None
                self.ok_after_resend = False
                self._return_credit()
                self._event("no ok after resend request; continuing without it")
            return None
        if not self.inflight or now - self.last_progress < self.timeout_s:
            return None
        self.timeouts += 1
        self.nudges += 1
        if self.nudges > self.max_nudges:
            error = f"printer not answering: {self.max_nudges} nudges without reply"
            self.jobs.fail(error)
            self.inflight.clear()
            return error
        lost = self.inflight.popleft()
        self._acknowledge(self.history.get(lost))
        self._return_credit()
        self.last_progress = now
        what = "the resynchronising M110" if lost is None else f"line {lost}"
        self._event(f"timeout: no ok for {what} within {self.timeout_s:g} s; sending M105 nudge")
        self.urgent.appendleft(("M105", None))
        self.finish_job_if_done()
        return None


def _report_shows_progress(oldest_cmd: str, line: str) -> bool:
    """Whether a temperature line means the long command in flight is still running. A
    heating wait's own reports carry ``W:``; auto-reports (M155) go on after the wait
    ended, so counting them would hide a lost ``ok`` for ever."""
    word = oldest_cmd.split(" ", 1)[0]
    if word in _HEATING_WAITS:
        return P.is_heating_wait_report(line)
    return word in _BLOCKING
