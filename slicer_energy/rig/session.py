"""One recorded session: a printer host, a meter and a logger wired together (thin glue).

Used by ``slicer-energy rig log`` (real hardware) and ``rig demo`` (virtual printer and meter).
Phases written to the log: ``idle`` before the job, ``heatup`` from the job start until the
first extruding move is acknowledged, ``print`` until the last line is acknowledged, then
``after`` while the tail is recorded.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GcodeError, MeterError
from .job import JobState
from .logger import SessionLogger
from .marlin import MarlinHost, job_command
from .meters import MeterSample


@dataclass
class SessionResult:
    folder: Path
    job: JobState
    summary: dict[str, Any] | None
    status: str
    messages: list[str] = field(default_factory=list)


def first_extrusion_index(commands: list[str]) -> int | None:
    """Index (in the stripped command list) of the first move that extrudes forward."""
    absolute_e = True
    e = 0.0
    for i, c in enumerate(commands):
        w = c.split(None, 1)[0].upper() if c else ""
        if w in ("M82", "G90"):
            absolute_e = True
        elif w in ("M83", "G91"):
            absolute_e = False
        elif w == "G92":
            m = re.search(r"E(-?\d*\.?\d+)", c.upper())
            if m:
                e = float(m.group(1))
        elif w in ("G1", "G2", "G3"):
            m = re.search(r"E(-?\d*\.?\d+)", c.upper())
            if not m:
                continue
            v = float(m.group(1))
            de = v - e if absolute_e else v
            e = v if absolute_e else e + v
            if de > 0 and re.search(r"[XY]-?\d", c.upper()):
                return i
    return None


def read_gcode_lines(path: str | Path) -> list[str]:
    """The lines of a G-code file (plain or .gz) read as the ``gcode`` command reads it, so a
    binary or non-UTF-8 file is refused before anything is sent to a printer."""
    from ..gcode.parse import open_gcode_text  # NumPy only when a file is printed

    path = Path(path)
    with open_gcode_text(path) as fh:
        try:
            return fh.read().splitlines()
        except UnicodeDecodeError as exc:
            raise GcodeError(
                f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                f"{exc.start} of a decoded block); is this a binary file?"
            ) from None
        except (OSError, EOFError) as exc:
            raise GcodeError(f"{path}: cannot read: {exc}") from None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class MeterPoller:
    """Reads a meter every ``interval_s`` (real seconds) in a thread and logs each sample.

    Health: after ``silent_after_s`` real seconds without a valid reading (since the start or
    the last good one) the meter counts as silent; the live line warns and serial.log gets one
    event per silence, so a dead or wrong meter never passes for a 0 kWh session.
    """

    def __init__(
        self,
        meter,
        logger: SessionLogger,
        clock: Callable[[], float],
        interval_s: float,
        *,
        silent_after_s: float = 10.0,
    ) -> None:
        self.meter = meter
        self.logger = logger
        self.clock = clock
        self.interval_s = interval_s
        self.silent_after_s = silent_after_s
        self.last: MeterSample | None = None
        self.energy_j = 0.0  # running trapezoid integral of the samples (live display)
        self.errors = 0
        self.readings = 0
        self._last_good = time.monotonic()  # real time of the start or the last good reading
        self._silence_logged = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="meter-poll", daemon=True)

    def start(self) -> MeterPoller:
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                t0 = self.clock()
                s = self.meter.read(t0)
                s.t_s = 0.5 * (t0 + self.clock())  # stamp the middle of the exchange
                if self.last is not None and s.t_s > self.last.t_s:
                    self.energy_j += 0.5 * (s.power_w + self.last.power_w) * (s.t_s - self.last.t_s)
                self.last = s
                self.logger.power(s)
                self.readings += 1
                self._last_good = time.monotonic()
                self._silence_logged = False
            except MeterError as exc:
                self._error(str(exc))
            except Exception as exc:  # noqa: BLE001 - never let the logging thread die
                self._error(f"unexpected {type(exc).__name__}: {exc}")
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def _error(self, msg: str) -> None:
        """Log the first failure and then one in 60, so a dead meter does not flood the log."""
        self.errors += 1
        if self.errors == 1 or self.errors % 60 == 0:
            self.logger.event(f"meter: {msg} (failure {self.errors})")
        if (silent := self.silent_s()) is not None and not self._silence_logged:
            self._silence_logged = True
            self.logger.event(f"meter: no valid reading for {silent:.0f} s")

    def silent_s(self) -> float | None:
        """Seconds without a valid reading, once that exceeds ``silent_after_s``; else None."""
        gap = time.monotonic() - self._last_good
        return gap if gap > self.silent_after_s else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def run_session(
    host: MarlinHost,
    logger: SessionLogger,
    poller: MeterPoller | None,
    *,
    gcode_lines: list[str] | None = None,
    gcode_name: str = "",
    tail_s: float = 0.0,
    real_per_session_s: float = 1.0,
    status: Callable[[MarlinHost, MeterPoller | None], None] | None = None,
    stop: threading.Event | None = None,
    job_timeout_s: float | None = None,
) -> SessionResult:
    """Stream ``gcode_lines`` (if given) while the poller logs power; then record ``tail_s``
    session-seconds more. ``real_per_session_s`` converts session time to real time (1/scale
    in a simulation). Returns the job's end state and the summary of the closed log."""
    stop = stop or threading.Event()
    messages: list[str] = []

    def show() -> None:
        if status:
            status(host, poller)

    logger.phase("idle")
    commands = [c for c in (job_command(ln) for ln in (gcode_lines or [])) if c]
    extrude_at = first_extrusion_index(commands)
    t_real0 = time.monotonic()
    status_str = "finished"
    try:
        if commands:
            host.start_print(commands, name=gcode_name, total=len(commands))
            _follow_job(host, logger, extrude_at, show, stop, messages, t_real0, job_timeout_s)
            if host.job.state != "done":
                status_str = host.job.state
                messages.append(host.job.message)
            logger.phase("after")
        t_tail_end = time.monotonic() + tail_s * real_per_session_s
        while time.monotonic() < t_tail_end and not stop.is_set() and host.connected:
            show()
            time.sleep(0.05)
        if not host.connected and status_str == "finished":
            status_str = "port lost"
            messages.append(host.error or "port lost")
    except KeyboardInterrupt:
        status_str = "interrupted"
        host.cancel()
        host.wait_idle(5.0)  # let the cooldown commands reach the printer
        raise
    finally:
        status_str, extra = _stop_meter(poller, status_str, messages)
        if host.error and host.error not in messages:
            messages.append(host.error)
        host.close()
        summary = logger.close(status_str, extra=extra)
    return SessionResult(logger.folder, host.job, summary, status_str, messages)


def _follow_job(
    host: MarlinHost,
    logger: SessionLogger,
    extrude_at: int | None,
    show: Callable[[], None],
    stop: threading.Event,
    messages: list[str],
    t_real0: float,
    job_timeout_s: float | None,
) -> None:
    """Until the started job ends: log the phase heatup, then print once the first extruding
    line (``extrude_at``) is acknowledged; cancel on ``stop`` or ``job_timeout_s`` real
    seconds after ``t_real0``, saying why in ``messages``."""
    logger.phase("heatup" if extrude_at else "print")
    in_print = not extrude_at
    while True:
        job = host.job
        if not in_print and extrude_at is not None and job.acked > extrude_at:
            logger.phase("print")
            in_print = True
        show()
        if job.finished:
            return
        if stop.is_set():
            host.cancel()
            messages.append("cancelled (interrupt)")
        if job_timeout_s is not None and time.monotonic() - t_real0 > job_timeout_s:
            host.cancel()
            messages.append(f"job timeout after {job_timeout_s:g} s")
        time.sleep(0.05)


def _stop_meter(
    poller: MeterPoller | None, status_str: str, messages: list[str]
) -> tuple[str, dict[str, Any] | None]:
    """Stop the meter and judge its health: the session status (a meter that never answered
    turns "finished" into "meter never answered") and the summary's ``meter`` table."""
    if poller is None:
        return status_str, None
    poller.stop()
    meter_health = {
        "readings": poller.readings,
        "failed_reads": poller.errors,
        "answered": poller.readings > 0,
    }
    if not poller.readings:
        messages.append(
            f"the power meter never answered ({poller.errors} failed reads): no energy was measured"
        )
        if status_str == "finished":
            status_str = "meter never answered"
    return status_str, {"meter": meter_health}


def status_line(host: MarlinHost, poller: MeterPoller | None, t0: float, now: float) -> str:
    """``elapsed | W | kWh | temperatures | progress`` for the live display."""
    el = max(0.0, now - t0)
    h, rem = divmod(int(el), 3600)
    m, s = divmod(rem, 60)
    parts = [f"{h:02d}:{m:02d}:{s:02d}"]
    if poller is not None and (silent := poller.silent_s()) is not None:
        parts.append(f"WARNING: no meter reading for {silent:.0f} s")
    if poller is not None and poller.last is not None:
        parts.append(f"{poller.last.power_w:7.1f} W")
        parts.append(f"{poller.energy_j / 3.6e6:.5f} kWh")
    for name, r in sorted(host.temps.items()):
        tgt = "" if r.target_c is None else f"/{r.target_c:.0f}"
        parts.append(f"{name} {r.actual_c:.1f}{tgt}")
    if host.job.total:
        parts.append(f"{100 * host.job.acked / host.job.total:5.1f} %")
    return " | ".join(parts)
