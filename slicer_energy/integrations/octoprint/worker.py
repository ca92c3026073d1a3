"""A one-thread work queue, the plugin's version of OctoPrint's analysis queue: an upload only
enqueues its file, so a large G-code never holds up OctoPrint's web or event threads."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class WorkQueue:
    """Runs ``work(item)`` for each :meth:`put` item in order, in one daemon thread."""

    def __init__(
        self,
        work: Callable[[Any], None],
        log: logging.Logger,
        name: str = "slicer-energy-estimates",
    ) -> None:
        self._work = work
        self._log = log
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._work(item)
            except Exception:  # a bug on one file must not stop the queue: log it, go on
                self._log.exception("estimate of %r failed", item)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
