"""The master side of a pseudo-terminal, as the virtual printer and meter use it."""

from __future__ import annotations

import errno
import os
import select
import threading
import tty
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .physics import SimClock, VirtualClock


class PtyPort:
    """Master side of a pty in raw mode; ``path`` is what a host opens. Writes never block
    (output is dropped when nobody reads, as a UART with no listener)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.closed = False
        self.wlock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.wlock:
            if self.closed:
                return
            view = memoryview(data)
            tries = 0
            while view:
                try:
                    n = os.write(self.master, view)
                    view = view[n:]
                except BlockingIOError:
                    tries += 1
                    if tries > 200:
                        return
                    select.select([], [self.master], [], 0.01)
                except OSError:
                    return

    def read(self, timeout_s: float) -> bytes | None:
        """Bytes available (b"" on timeout), None once closed."""
        if self.closed:
            return None
        try:
            r, _, _ = select.select([self.master], [], [], timeout_s)
            if not r:
                return b""
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return b""
            return None

    def read_from_peer(self, clock: SimClock | VirtualClock, since_real_s: float) -> bytes | None:
        """:meth:`read` for up to 50 ms, a wait for the party outside the simulation that has
        owed its next bytes since ``since_real_s`` (``clock.outside``: a virtual clock does not
        run ahead while a host or poller is still answering)."""
        with clock.outside(since_real_s):
            return self.read(0.05)

    def close(self) -> None:
        with self.wlock:
            if self.closed:
                return
            self.closed = True
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
