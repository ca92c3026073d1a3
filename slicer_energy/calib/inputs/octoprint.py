"""Read an OctoPrint ``serial.log`` and, with a smart-plug trace, build a calibration session.

OctoPrint's ``SERIAL`` logger (Settings > Serial Connection > "Log communication to
serial.log") writes ``%(asctime)s - %(message)s`` records, i.e. ``YYYY-MM-DD HH:MM:SS,mmm -
…`` in the host's local time, one per line::

    2026-11-26 18:06:54,233 - Changing monitoring state from "Starting" to "Printing"
    2026-11-26 18:06:54,292 - Send: N1 M140 S60*82
    2026-11-26 18:06:54,310 - Recv: ok
    2026-11-26 18:06:54,491 - Recv:  T:22.52 /210.00 B:22.05 /60.00 @:127 B@:127 W:?

From it we take each job (``Printing`` until ``Operational`` again), every line's send time
and the ``ok`` that acknowledged it (OctoPrint streams ping-pong; after ``Resend:`` the
firmware's extra ``ok`` belongs to the rejected line and the line is timed from its resend),
and the temperature reports (``T:``/``B:`` with targets, heater output ``@:``/``B@:`` where
the firmware prints it). These are the same streams a rig session's ``serial.log`` and
``temps.csv`` hold, so :func:`load_octoprint_session` returns the same
:class:`~slicer_energy.calib.inputs.session.Session` the fit and validation use, with the plug's
readings moved onto the host clock by the offset :mod:`slicer_energy.calib.inputs.clock` estimates.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import CalibrationError
from ...rig.session import first_extrusion_index
from .clock import ClockOffset, estimate_offset, host_power_features
from .plug import PlugTrace, read_plug, time_zone
from .session import (
    HeaterTrace,
    Session,
    command_word,
    firmware_full_scale,
    machine_state,
    strip_line,
)

_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) - (.*)$")
_STATE = re.compile(r'^Changing monitoring state from "([^"]*)" to "([^"]*)"')
_LINENO = re.compile(r"^N(-?\d+)\s")
_RESEND = re.compile(r"^(?:Resend|rs)[:\s]\s*N?:?\s*(\d+)", re.IGNORECASE)
# "T:210.0 /210.0", "T0:..", "B:60.0 /60.0"; heater output "@:127", "@0:..", "B@:0"
_TEMP = re.compile(r"(?:^|\s)(T\d?|B):\s*(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)")
_PWM = re.compile(r"(?:^|\s)(B?@\d?):\s*(\d+(?:\.\d+)?)")
_FIRMWARE = re.compile(
    r"FIRMWARE_NAME:\s*(.*?)(?:\s+(?:SOURCE_CODE_URL|PROTOCOL_VERSION|MACHINE_TYPE)|$)"
)
# Commands OctoPrint sends on its own (polling, line numbering, keepalive, capability queries);
# they are not part of the printed file and cost no energy.
HOST_COMMANDS = {"M105", "M110", "M113", "M115", "M155", "M27", "M21"}
_BUSY_STATES = {"Printing", "Pausing", "Paused", "Resuming", "Cancelling", "Finishing"}


@dataclass
class Job:
    """One print job in the log; times are Unix seconds on the host clock."""

    index: int  # 1-based, in log order
    t0_s: float  # state changed to "Printing"
    t1_s: float  # back to "Operational" (or the connection ended)
    status: str  # "done", "cancelled", "failed", "unfinished"
    lines: list[str] = field(default_factory=list)  # job lines as sent, without N and *cs
    line_t_s: list[tuple[float, float]] = field(default_factory=list)  # (sent, acknowledged)
    resends: int = 0


@dataclass
class OctoPrintLog:
    path: str
    t_first_s: float
    t_last_s: float
    firmware: str
    temps: dict[str, np.ndarray]  # "hotend"/"bed": rows (t_s, actual, target, pwm_raw or nan)
    jobs: list[Job]
    connections: int  # "Connected to:" records

    def heaters(self, full_scale: float) -> dict[str, HeaterTrace]:
        out = {}
        for name, a in self.temps.items():
            duty = np.clip(a[:, 3] / full_scale, 0.0, 1.0)
            out[name] = HeaterTrace(a[:, 0], a[:, 1], a[:, 2], duty)
        return out

    @property
    def pwm_known(self) -> bool:
        return any(np.isfinite(a[:, 3]).mean() > 0.5 for a in self.temps.values())

    def job(self, index: int | None = None) -> Job:
        """Job ``index`` (1-based); default: the last completed one."""
        if not self.jobs:
            raise CalibrationError(
                f'{self.path}: no print job in the log (no change to state "Printing"); '
                "was serial logging on while printing?"
            )
        if index is None:
            done = [j for j in self.jobs if j.status == "done"]
            if not done:
                raise CalibrationError(
                    f"{self.path}: no completed job ({', '.join(_job_str(j) for j in self.jobs)})"
                    "; choose one with --octoprint-job N"
                )
            return done[-1]
        if not 1 <= index <= len(self.jobs):
            raise CalibrationError(
                f"{self.path}: job {index} does not exist; the log has {len(self.jobs)} "
                f"({', '.join(_job_str(j) for j in self.jobs)})"
            )
        return self.jobs[index - 1]


def _job_str(j: Job) -> str:
    t = _dt.datetime.fromtimestamp(j.t0_s).strftime("%Y-%m-%d %H:%M:%S")
    return f"#{j.index} {t} {j.status} {len(j.lines)} lines"


def read_octoprint_log(path: str | Path, naive_tz: str | None = None) -> OctoPrintLog:
    """Parse an OctoPrint ``serial.log`` (times in ``naive_tz``, default this computer's zone,
    as OctoPrint writes the host's local time without a zone)."""
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{path}: OctoPrint serial.log not found")
    zone = time_zone(naive_tz)
    records: list[tuple[float, str]] = []
    other = 0
    day_cache: dict[str, float] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            m = _RECORD.match(raw.rstrip("\r\n"))
            if not m:
                other += 1  # continuation of a multi-line record (traceback, terminal dump)
                continue
            stamp = m.group(1)
            base = day_cache.get(stamp)
            if base is None:
                d = _dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
                d = d.astimezone() if zone is None else d.replace(tzinfo=zone)
                base = day_cache[stamp] = d.timestamp()
            records.append((base + int(m.group(2)) / 1000.0, m.group(3)))
    if not records:
        raise CalibrationError(
            f"{path}: no 'YYYY-MM-DD HH:MM:SS,mmm - ...' records; not an OctoPrint serial.log"
        )
    # time must not run backwards (allow 1 s: records from two threads, DST is an error too)
    t = np.array([r[0] for r in records])
    back = np.nonzero(np.diff(t) < -1.0)[0]
    if back.size:
        i = int(back[0])
        raise CalibrationError(
            f"{path}: record {i + 2} goes back in time ({records[i + 1][1][:40]!r}); "
            "two logs concatenated, or a clock change during the log"
        )
    return _parse(path, records)


def _parse(path: Path, records: list[tuple[float, str]]) -> OctoPrintLog:
    """Jobs, their lines with send and acknowledgement times, temperatures and the firmware
    name, from the time-ordered records of a serial.log."""
    p = _LogParser()
    for t, msg in records:
        if msg.startswith("Send: "):
            p.sent(t, msg[6:].strip())
        elif msg.startswith("Recv:"):
            p.received(t, msg[5:].strip())
        elif sm := _STATE.match(msg):
            p.state_change(t, *sm.groups())
        elif msg.startswith("Connected to:"):
            p.connections += 1
            p.lost_link()
    if p.job is not None:
        p.job.t1_s = records[-1][0]
        _close(p.job)
        p.jobs.append(p.job)
    arr = {k: np.array(v, dtype=float) for k, v in p.temps.items() if v}
    return OctoPrintLog(
        str(path), records[0][0], records[-1][0], p.firmware, arr, p.jobs, p.connections
    )


class _LogParser:
    """The state of one pass over a serial.log: the job being printed, the lines sent and
    not yet acknowledged (OctoPrint's ``ok`` matching, resends included)."""

    def __init__(self) -> None:
        self.temps: dict[str, list[list[float]]] = {"hotend": [], "bed": []}
        self.jobs: list[Job] = []
        self.firmware = ""
        self.connections = 0
        self.job: Job | None = None
        self.finishing = False
        self.by_n: dict[int, list] = {}  # line number -> entry [t_sent, t_ack, text, number]
        self.awaiting: list[list] = []  # sent, not yet acknowledged, in send order
        self.skip_ok = 0

    def sent(self, t: float, text: str) -> None:
        """A ``Send:`` record: a new line (a job's, unless a host command), or a resend."""
        m = _LINENO.match(text)
        n = int(m.group(1)) if m else None
        line = strip_line(text)
        # a firmware that sends no extra ok after Resend (or one still in flight): do not
        # skip the ok that belongs to this line
        self.skip_ok = 0
        if n is not None and n in self.by_n and self.by_n[n][2] == line:
            entry = self.by_n[n]  # a resend: time the line from its last transmission
            entry[0], entry[1] = t, None
            if entry not in self.awaiting:
                self.awaiting.append(entry)
            if self.job is not None:
                self.job.resends += 1
            return
        job = self.job
        in_job = job is not None and not self.finishing and command_word(line) not in HOST_COMMANDS
        entry = [t, None, line, n]
        if n is not None:
            self.by_n[n] = entry
        self.awaiting.append(entry)
        if job is not None and in_job and line:
            job.lines.append(line)
            job.line_t_s.append(entry)  # type: ignore[arg-type]  # filled on ok

    def received(self, t: float, text: str) -> None:
        """A ``Recv:`` record: an ``ok`` acknowledges the oldest line awaiting one, a
        ``Resend:`` takes the rejected lines back; temperatures and the firmware name."""
        if text.startswith("ok"):
            if self.skip_ok:
                self.skip_ok -= 1
            elif self.awaiting:
                self.awaiting.pop(0)[1] = t
        rm = _RESEND.match(text)
        if rm:
            n = int(rm.group(1))
            self.awaiting[:] = [e for e in self.awaiting if e[3] is None or e[3] < n]
            self.skip_ok = 1  # Marlin acknowledges the rejected line after "Resend:"
        if "T:" in text or "T0:" in text:
            _temps(text, t, self.temps)
        fm = _FIRMWARE.search(text)
        if fm:
            self.firmware = fm.group(1).strip()

    def state_change(self, t: float, old: str, new: str) -> None:
        """``Changing monitoring state from 'old' to 'new'``: jobs start and end here."""
        job = self.job
        if new == "Printing" and old in ("Starting", "Operational") and job is None:
            self.job = Job(len(self.jobs) + 1, t, t, "unfinished")
            self.finishing = False
            self.by_n.clear()  # OctoPrint resets the line numbers (M110 N0) at a job's start
        elif new == "Finishing":
            self.finishing = True
        elif job is not None and new not in _BUSY_STATES:
            job.t1_s = t
            job.status = (
                "done"
                if self.finishing and new == "Operational"
                else "cancelled"
                if old == "Cancelling"
                else "failed"
            )
            _close(job)
            self.jobs.append(job)
            self.job, self.finishing = None, False
        if new in ("Offline", "Error", "Offline after error", "Closed", "Connecting"):
            self.lost_link()

    def lost_link(self) -> None:
        """A (re)connection or a lost one: no ``ok`` can come for what was in flight."""
        self.awaiting.clear()
        self.skip_ok = 0


def _close(job: Job) -> None:
    """Entries become (sent, acknowledged); a line never acknowledged ends at the job end."""
    job.line_t_s = [(e[0], e[1] if e[1] is not None else job.t1_s) for e in job.line_t_s]  # type: ignore[index]


def _temps(text: str, t: float, temps: dict[str, list[list[float]]]) -> None:
    vals = {k: (float(a), float(b)) for k, a, b in _TEMP.findall(text)}
    pwm = {k: float(v) for k, v in _PWM.findall(text)}
    hot = vals.get("T0", vals.get("T"))
    if hot is not None:
        temps["hotend"].append([t, hot[0], hot[1], pwm.get("@0", pwm.get("@", np.nan))])
    if "B" in vals:
        temps["bed"].append([t, vals["B"][0], vals["B"][1], pwm.get("B@", np.nan)])


# ------------------------------------------------------------------------------ session
def load_octoprint_session(
    serial_log: str | Path,
    plug_csv: str | Path,
    *,
    job: int | None = None,
    naive_tz: str | None = None,
    plug_tz: str | None = None,
    plug_format: str = "auto",
    plug_unit: str = "auto",
    plug_entity: str | None = None,
    plug_start: str | None = None,
    offset_s: float | None = None,
    max_offset_s: float = 600.0,
    pwm_full_scale: float | None = None,
    gcode: str | Path | None = None,
) -> tuple[Session, ClockOffset | None]:
    """A calibration session from an OctoPrint ``serial.log`` and a smart-plug export.

    The meter's clock offset is estimated
    (:func:`~slicer_energy.calib.inputs.clock.estimate_offset`) unless ``offset_s`` gives it
    (meter time − host time). ``gcode``, if given, is checked against the lines the log shows
    were sent.
    """
    log = read_octoprint_log(serial_log, naive_tz)
    jb = log.job(job)
    if not jb.lines:
        raise CalibrationError(f"{serial_log}: job #{jb.index} sent no G-code lines")
    if not log.temps:
        raise CalibrationError(
            f"{serial_log}: no temperature reports (T:/B:); the heaters cannot be modelled"
        )
    full_scale = pwm_full_scale or firmware_full_scale({"firmware": {"name": log.firmware}})
    heaters_abs = log.heaters(full_scale)
    duty_known = log.pwm_known
    plug = read_plug(
        plug_csv,
        fmt=plug_format,
        naive_tz=plug_tz,
        unit=plug_unit,
        entity=plug_entity,
        start=plug_start,
    )
    if gcode is not None:
        _check_gcode(Path(gcode), jb, Path(serial_log))
    est: ClockOffset | None = None
    if offset_s is None:
        est = _estimate_offset(log, jb, heaters_abs, duty_known, plug, max_offset_s, serial_log)
        offset_s = est.offset_s
    host_plug = plug.shifted(offset_s)
    t_origin = log.t_first_s  # session clock: seconds since the log's first record
    pt = host_plug.t_s - t_origin
    _check_covered(host_plug, t_origin, jb, offset_s, (plug_csv, serial_log))
    heaters = {
        k: HeaterTrace(h.t_s - t_origin, h.actual_c, h.target_c, h.duty)
        for k, h in heaters_abs.items()
    }
    line_t = [(a - t_origin, b - t_origin) for a, b in jb.line_t_s]
    events = [(a, b, ln) for (a, b), ln in zip(line_t, jb.lines, strict=True)]
    steppers, moving, fan, waits_s = machine_state(events, float(max(pt[-1], jb.t1_s - t_origin)))
    ex = first_extrusion_index(jb.lines)
    meta = {
        "source": "octoprint",
        "firmware": {"name": log.firmware},
        "octoprint": {
            "serial_log": str(serial_log),
            "job": jb.index,
            "job_status": jb.status,
            "resends": jb.resends,
            "t_origin_unix_s": t_origin,
            "pwm_full_scale": full_scale,
        },
        "plug": _plug_meta(plug, plug_csv, offset_s, est, t_origin),
    }
    sess = Session(
        name=f"{Path(serial_log).stem}-job{jb.index}",
        source=f"{serial_log} + {plug_csv}",
        power_t_s=pt,
        power_w=host_plug.power_w,
        power_window_s=host_plug.window_s,
        heaters=heaters,
        job_t0_s=jb.t0_s - t_origin,
        job_t1_s=jb.t1_s - t_origin,
        print_t0_s=line_t[ex][1] if ex is not None else None,
        gcode_lines=list(jb.lines),
        line_t_s=line_t,
        steppers=steppers,
        moving=moving,
        fan=fan,
        waits_s=waits_s,
        homing_s=[
            b - a for (a, b), ln in zip(line_t, jb.lines, strict=True) if command_word(ln) == "G28"
        ],
        duty_known=duty_known,
        meta=meta,
    )
    return sess, est


def _estimate_offset(
    log: OctoPrintLog,
    jb: Job,
    heaters_abs: dict,
    duty_known: bool,
    plug: PlugTrace,
    max_offset_s: float,
    serial_log: str | Path,
) -> ClockOffset:
    """The meter's clock offset, from the host's heater and machine-state features."""
    feats = host_power_features(heaters_abs, duty_known, log.t_first_s, log.t_last_s)
    ev_abs = [(a, b, ln) for (a, b), ln in zip(jb.line_t_s, jb.lines, strict=True)]
    st, mv, fn, _w = machine_state(ev_abs, log.t_last_s)
    feats += [("steppers", st, 0.0), ("moving", mv, 0.0), ("fan", fn, 0.0)]
    return estimate_offset(
        feats,
        plug,
        (log.t_first_s, log.t_last_s),
        max_offset_s=max_offset_s,
        source=str(serial_log),
    )


def _check_covered(
    host_plug: PlugTrace,
    t_origin: float,
    jb: Job,
    offset_s: float,
    files: tuple[str | Path, str | Path],
) -> None:
    """The meter readings (moved onto the host clock) must cover 90 % of the job; ``files``:
    the plug export and the serial.log, for the message."""
    plug_csv, serial_log = files
    pt = host_plug.t_s - t_origin
    overlap = min(pt[-1], jb.t1_s - t_origin) - max(pt[0], jb.t0_s - t_origin)
    if overlap < 0.9 * (jb.t1_s - jb.t0_s):
        raise CalibrationError(
            f"{plug_csv}: meter readings {_hm(host_plug.t_s[0])}..{_hm(host_plug.t_s[-1])} "
            f"(host clock, offset {offset_s:+.1f} s) do not cover job #{jb.index} "
            f"{_hm(jb.t0_s)}..{_hm(jb.t1_s)} of {serial_log}; wrong file, date or time zone "
            "(--plug-tz / --octoprint-tz)?"
        )


def _plug_meta(
    plug: PlugTrace,
    plug_csv: str | Path,
    offset_s: float,
    est: ClockOffset | None,
    t_origin: float,
) -> dict:
    """meta's plug table: the file, the offset applied and its gaps on the session clock."""
    return {
        "file": str(plug_csv),
        "format": plug.fmt,
        "offset_s": offset_s,
        "offset_stderr_s": est.stderr_s if est else None,
        "gaps": [(a - offset_s - t_origin, b - offset_s - t_origin) for a, b in plug.gaps],
        "notes": plug.notes,
    }


def _hm(t: float) -> str:
    return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _check_gcode(gcode: Path, jb: Job, log: Path) -> None:
    from ...rig.marlin import job_command

    if not gcode.exists():
        raise CalibrationError(f"{gcode}: G-code file not found")
    want = [
        c
        for c in (
            job_command(x) for x in gcode.read_text(encoding="utf-8", errors="replace").splitlines()
        )
        if c and command_word(c) not in HOST_COMMANDS
    ]
    got = [ln for ln in jb.lines if ln]
    if want != got:
        i = next((k for k, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), None)
        where = (
            f"first difference at command {i + 1}: file {want[i]!r}, log {got[i]!r}"
            if i is not None
            else f"file has {len(want)} commands, job #{jb.index} sent {len(got)}"
        )
        raise CalibrationError(
            f"{gcode}: is not the file job #{jb.index} of {log} printed ({where})"
        )
