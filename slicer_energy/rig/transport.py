"""The serial transport of the Marlin host: the port, a reader and a writer thread.

Knows bytes and lines, nothing of the protocol: the reader splits what arrives into lines and
hands each to ``on_line``; the writer writes whatever ``next_text`` returns until it returns
None; any failure of the port goes once to ``on_lost`` (the USB cable pulled). Every line
written is logged (``>``) before it goes out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class SerialTransport:
    """A pyserial ``Serial`` (or anything like it) read and written by two daemon threads.

    ``next_text`` blocks until there is a line to write and returns None when the writer
    should stop; set :attr:`closing` (under the host's lock) before :meth:`close`.
    """

    def __init__(
        self,
        ser,
        *,
        log: Callable[[str, str], None],
        on_line: Callable[[str], None],
        on_lost: Callable[[str], None],
        next_text: Callable[[], str | None],
    ) -> None:
        self.ser = ser
        self.closing = False
        self._log = log
        self._on_line = on_line
        self._on_lost = on_lost
        self._next_text = next_text
        self._reader = threading.Thread(target=self._read_loop, name="marlin-read", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="marlin-write", daemon=True)

    def start_reader(self) -> None:
        self._reader.start()

    def start_writer(self) -> None:
        self._writer.start()

    def write(self, text: str) -> None:
        """Log and write one line as it is (no numbering, no queue)."""
        self._log(">", text)
        try:
            self.ser.write((text + "\n").encode("ascii", "replace"))
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types
            self._on_lost(f"write failed: {exc}")

    def close(self) -> None:
        """Close the port and let both threads end (not waiting for the calling one)."""
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001 - closing a vanished port may fail; nothing to do
            pass
        for t in (self._reader, self._writer):
            if t.is_alive() and t is not threading.current_thread():
                t.join(timeout=2.0)

    def _write_loop(self) -> None:
        while (text := self._next_text()) is not None:
            self.write(text)

    def _read_loop(self) -> None:
        buf = b""
        while not self.closing:
            try:
                chunk = self.ser.read(max(1, getattr(self.ser, "in_waiting", 0) or 1))
            except Exception as exc:  # noqa: BLE001 - SerialException / OSError(EIO)
                if not self.closing:
                    self._on_lost(str(exc) or type(exc).__name__)
                return
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("ascii", "replace").strip("\r\x00 ")
                if line:
                    self._on_line(line)
