"""What the plugin records while OctoPrint prints: meter readings, serial traffic, temperatures.

The meter is polled all the time (the tab shows live power) by the rig's own
:class:`~slicer_energy.rig.session.MeterPoller`, with this recorder as its sink. During a job
every reading goes to the SQLite history (committed at once) and, with OctoPrint's serial
traffic and temperature reports, into a session folder written by the rig's
:class:`~slicer_energy.rig.logger.SessionLogger`: the folder ``slicer-energy calibrate`` reads.
Nothing here imports OctoPrint; the plugin feeds it from its hooks and events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...rig.logger import SessionLogger
from ...rig.meters import MeterSample, open_meter
from ...rig.protocol import parse_m115, parse_temperatures
from ...rig.session import MeterPoller, file_sha256, first_extrusion_index
from .store import History

NO_METER = ("", "none")


class JobRecorder:
    """One printer's jobs: begin on the first job line OctoPrint sends, end on its job event.

    Thread-safe: the meter thread, OctoPrint's comm thread (serial hooks) and its event thread
    all call in; the current job and session are swapped under a lock.
    """

    def __init__(
        self,
        history: History,
        sessions_dir: str | Path,
        on_sample: Callable[[MeterSample], None] | None = None,
    ) -> None:
        self.history = history
        self.sessions_dir = Path(sessions_dir)
        self.meter_spec = "none"
        self.on_sample = on_sample
        self.firmware = ""
        self.job_id: int | None = None
        self.session: SessionLogger | None = None
        self._heatup: list[str] | None = None  # commands sent while heating up, until extrusion
        self._lock = threading.Lock()
        self.poller: MeterPoller | None = None

    def set_meter(self, spec: str, poll_s: float) -> None:
        """Poll the meter ``spec`` (``tasmota:HOST``, ``shelly:HOST``, any ``rig`` meter or
        ``none``) every ``poll_s``; raises MeterError for a spec no driver takes."""
        spec = spec.strip()
        meter = None if spec.lower() in NO_METER else open_meter(spec)
        self._stop_poller()
        self.meter_spec = spec if meter else "none"
        if meter is not None:
            self.poller = MeterPoller(meter, self, time.time, poll_s).start()

    def _stop_poller(self) -> None:
        poller, self.poller = self.poller, None
        if poller:
            poller.stop()
            poller.meter.close()

    # ------------------------------------------------------------------ MeterPoller's sink
    def power(self, s: MeterSample) -> None:
        """A reading (``t_s`` in Unix seconds): into the running job's history and session."""
        job_id, session = self.job_id, self.session
        if job_id is not None and session is not None:
            self.history.add_reading(job_id, s.t_s, s.power_w)
            session.power(s)
        if self.on_sample:
            self.on_sample(s)

    def event(self, text: str) -> None:
        """A meter failure or silence, noted in the running job's serial.log."""
        if self.session is not None:
            self.session.event(text)

    # ------------------------------------------------------------------ job
    def begin(
        self, origin: str, path: str, disk_path: str | None, printer: str, predicted: dict | None
    ) -> int:
        """Open the job's session folder and history row; its id."""
        meta: dict[str, Any] = {
            "printer": {"name": printer},
            "firmware": {"name": self.firmware},
            "meter": {"kind": self.meter_spec.partition(":")[0].lower(), "spec": self.meter_spec},
            "host": {"name": "OctoPrint", "plugin": "slicer_energy"},
            "gcode": {"file": path, "origin": origin},
        }
        if disk_path and Path(disk_path).is_file():
            meta["gcode"]["sha256"] = file_sha256(disk_path)
        session = SessionLogger(self.sessions_dir, Path(path).stem, meta=meta, clock=time.time)
        session.update_meta(session={"clock": "unix"})
        t0 = time.time()
        session.event(f"print started: {path}", t0)
        session.phase("heatup", t0)
        job_id = self.history.start_job(origin, path, printer, t0, predicted, str(session.folder))
        with self._lock:
            self.session, self.job_id, self._heatup = session, job_id, []
        last = self.poller.last if self.poller else None
        if last is not None and t0 - last.t_s < 2 * self.poller.interval_s:
            self.power(last)  # the reading before the start: the session covers the whole job
        return job_id

    def end(
        self, status: str, reason: str = "", pricing: Callable[[float], dict] | None = None
    ) -> dict[str, Any] | None:
        """Close the running job (``done``, ``cancelled``, ``failed``); its stored record."""
        with self._lock:
            session, job_id = self.session, self.job_id
            self.session = self.job_id = self._heatup = None
        if session is None or job_id is None:
            return None
        t1 = time.time()
        done = "print done" if status == "done" else f"print cancelled: {status} {reason}".strip()
        session.event(done, t1)
        session.close("finished" if status == "done" else status)
        return self.history.end_job(job_id, t1, status, pricing)

    # ------------------------------------------------------------------ serial traffic
    def sent(self, cmd: str) -> None:
        session = self.session
        if session is None:
            return
        session.serial(">", cmd)
        heatup = self._heatup
        if heatup is not None:
            heatup.append(cmd)
            if first_extrusion_index(heatup) is not None:
                self._heatup = None
                session.phase("print")

    def received(self, line: str) -> None:
        if "FIRMWARE_NAME:" in line:
            self.firmware = parse_m115([line]).name
        session = self.session
        if session is None:
            return
        session.serial("<", line.rstrip("\r\n"))
        report = parse_temperatures(line)
        if report is not None:
            session.temps(report.heaters)

    # ------------------------------------------------------------------ state
    def live(self) -> dict[str, Any]:
        """Last reading, meter health and the running job, for the tab and the API."""
        p = self.poller
        last = p.last if p else None
        return {
            "meter": self.meter_spec,
            "power_w": last.power_w if last else None,
            "t_unix": last.t_s if last else None,
            "meter_errors": p.errors if p else 0,
            "meter_silent_s": p.silent_s() if p else None,
            "job_id": self.job_id,
        }

    def stop(self) -> None:
        """Stop polling; a job still running is closed as ``interrupted``."""
        self._stop_poller()
        self.end("interrupted")
