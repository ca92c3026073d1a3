"""The master side of a pseudo-terminal, as the virtual printer and meter use it."""

from __future__ import annotations

import array
import errno
import fcntl
import os
import select
import termios
import threading
import time
import tty


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
        self._written_at = -1.0  # time.monotonic() of the last write

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
                    self._written_at = time.monotonic()
                except BlockingIOError:
                    tries += 1
                    if tries > 200:
                        return
                    select.select([], [self.master], [], 0.01)
                except OSError:
                    return

    def unread(self) -> bool:
        """Whether written bytes may still wait for the host: queued at the slave side, or
        written in the last 10 ms (the tty layer queues them a moment after the write)."""
        if self.closed:
            return False
        if time.monotonic() - self._written_at < 0.01:
            return True
        n = array.array("i", [0])
        try:
            fcntl.ioctl(self.slave, termios.FIONREAD, n)
        except OSError:
            return False
        return n[0] > 0

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
