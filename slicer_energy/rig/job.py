"""Job control of the Marlin host: one print job's state and the stream of its command lines.

The job is started, paused, resumed and ended here; :class:`~.lines.LineWindow` pulls its lines
and reports their acknowledgements, and decides with :meth:`JobControl.finish_if_done` when
the last one is in. Everything here runs under the host's lock (a ``threading.Condition``,
whose waiters are woken when a job ends), so no method takes a lock of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..errors import PrinterError


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


class JobControl:
    """The current :class:`JobState` and the iterator of its commands (caller holds ``cond``).

    ``clock`` stamps the start and end (session time, as the log); ``event`` writes a ``#``
    line to the log.
    """

    def __init__(
        self, cond: threading.Condition, clock: Callable[[], float], event: Callable[[str], None]
    ) -> None:
        self._cond = cond
        self._clock = clock
        self._event = event
        self.job = JobState()
        self._lines: Iterator[str] | None = None

    @property
    def running(self) -> bool:
        """Printing or paused: a job that can still end in error."""
        return self.job.state in ("printing", "paused")

    @property
    def feeding(self) -> bool:
        """Whether the job has lines left to hand out now (printing, not paused)."""
        return self._lines is not None and self.job.state == "printing"

    def start(self, cmds: Iterable[str], name: str, total: int | None) -> None:
        if self.running:
            raise PrinterError(f"a print is already running ({self.job.name})")
        self.job = JobState(name=name, total=total, state="printing", t_start_s=self._clock())
        self._lines = iter(cmds)
        self._cond.notify_all()

    def pause(self) -> None:
        if self.job.state == "printing":
            self.job.state = "paused"

    def resume(self) -> None:
        if self.job.state == "paused":
            self.job.state = "printing"
            self._cond.notify_all()

    def next_line(self) -> str | None:
        """The next command to send (counted as sent), or None once the file is exhausted."""
        assert self._lines is not None
        try:
            cmd = next(self._lines)
        except StopIteration:
            self._lines = None
            return None
        self.job.sent += 1
        return cmd

    def line_acked(self) -> None:
        self.job.acked += 1

    def finish(self, state: str, message: str) -> None:
        """End the job (done, cancelled or error), wake every waiter and log why."""
        self.job.state = state
        self.job.message = message
        self.job.t_end_s = self._clock()
        self._lines = None
        self._cond.notify_all()
        self._event(f"print {state}: {message}")

    def fail(self, message: str) -> None:
        """End a running job in error; a finished or idle one stays as it is."""
        if self.running:
            self.finish("error", message)

    def finish_if_done(self, settled: bool) -> None:
        """Done once every line was handed out and, ``settled``, acknowledged in order."""
        if self.job.state == "printing" and self._lines is None and settled:
            self.finish("done", f"{self.job.acked} lines acknowledged")
