"""Read a rig session folder and put its streams on one clock.

A session (``firmware_logs/README.md``) has ``serial.log`` (lines sent/received, events),
``temps.csv`` (heater temperature, target and PWM per report) and ``power.csv`` (meter
readings). They share the session clock. From them we build piecewise-constant inputs
(heater duty, steppers enabled, moving, part fan) and each meter reading's averaging
window, so the fit can compare the model's mean power over exactly the window the meter
averaged. Readers here are strict: a missing or corrupt file, time running backwards or a
meter trace that does not cover the print is an error naming the file.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import CalibrationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Full scale of the printed heater output (`@:` / `B@:`), by firmware; firmware_logs/README.md
# ("pwm_raw"): Marlin 1.1.x AVR prints 127 at full power (corpus serial/guidugast_pronterface.log),
# the virtual printer uses the same scale.
PWM_FULL_SCALE_DEFAULT = 127.0
MAX_BAD_ROW_FRACTION = 0.05  # more unreadable rows than this: the file is corrupt, not torn
_LINE_NO = re.compile(r"^N\d+\s+")
_CHECKSUM = re.compile(r"\*\d+\s*$")


class StepFn:
    """A piecewise-constant signal: ``values[i]`` holds from ``t_s[i]`` to ``t_s[i+1]``.

    Window means use the cumulative integral, so any window (meter averaging, report
    interval) is exact for the sampled signal.
    """

    def __init__(self, t_s: np.ndarray, values: np.ndarray, t_end_s: float | None = None) -> None:
        t = np.asarray(t_s, dtype=float)
        v = np.asarray(values, dtype=float)
        if t.size == 0:
            t, v = np.array([0.0]), np.array([0.0])
        end = float(t[-1] + 1.0) if t_end_s is None else max(float(t_end_s), float(t[-1]))
        self.t = np.append(t, end)
        self.v = v
        self.cum = np.concatenate(([0.0], np.cumsum(v * np.diff(self.t))))

    def integral(self, t: np.ndarray) -> np.ndarray:
        tt = np.clip(np.asarray(t, dtype=float), self.t[0], self.t[-1])
        i = np.clip(np.searchsorted(self.t, tt, side="right") - 1, 0, len(self.v) - 1)
        return self.cum[i] + self.v[i] * (tt - self.t[i])

    def mean(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.asarray(a, float), np.asarray(b, float)
        span = np.maximum(b - a, 1e-9)
        return (self.integral(b) - self.integral(a)) / span

    def at(self, t: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(self.t, np.asarray(t, float), side="right") - 1, 0, None)
        return self.v[np.minimum(i, len(self.v) - 1)]


@dataclass
class HeaterTrace:
    """One heater's reports: time, measured temperature, set point, duty 0..1."""

    t_s: np.ndarray
    actual_c: np.ndarray
    target_c: np.ndarray
    duty: np.ndarray

    def duty_fn(self) -> StepFn:
        return StepFn(self.t_s, self.duty)


@dataclass
class Session:
    """A session's streams on its one clock, ready for fitting and validation."""

    name: str
    source: str  # folder or file(s) it came from
    power_t_s: np.ndarray
    power_w: np.ndarray
    power_window_s: np.ndarray  # averaging window that ends at each reading
    heaters: dict[str, HeaterTrace]  # "hotend", "bed"
    job_t0_s: float  # job start (first G-code line sent)
    job_t1_s: float  # last line acknowledged
    print_t0_s: float | None  # first extruding move acknowledged (phase "print")
    gcode_lines: list[str]  # the job's G-code as it was sent (line numbers, checksums removed)
    line_t_s: list[tuple[float, float]]  # (sent, acknowledged) session time of each line
    steppers: StepFn
    moving: StepFn
    fan: StepFn
    waits_s: float = 0.0  # job time in M109/M190/G4 (sent to acknowledged)
    homing_s: list[float] = field(default_factory=list)  # each G28, sent to acknowledged
    duty_known: bool = True  # heater PWM is in the data (rig, Klipper) or not (plug + G-code)
    meta: dict = field(default_factory=dict)
    # filament fed into the hotend, mm/s (from the acknowledged E moves); None: not known
    flow_mm_s: StepFn | None = None

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Trapezoidal integral of the metered power over [t0, t1] (clipped to the data)."""
        t, p = self.power_t_s, self.power_w
        a, b = max(t0_s, t[0]), min(t1_s, t[-1])
        if b <= a:
            return 0.0
        inner = (t > a) & (t < b)
        tt = np.concatenate(([a], t[inner], [b]))
        pp = np.interp(tt, t, p)
        return float(np.sum(0.5 * (pp[1:] + pp[:-1]) * np.diff(tt)))

    @property
    def job_energy_j(self) -> float:
        return self.energy_j(self.job_t0_s, self.job_t1_s)

    @property
    def job_time_s(self) -> float:
        return self.job_t1_s - self.job_t0_s


# ---------------------------------------------------------------------------------- readers
def _read_table(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV written by the rig logger; a torn last line is dropped, anything
    worse (missing columns, many unparsable rows) is an error naming the file."""
    if not path.exists():
        raise CalibrationError(f"{path}: missing (a session folder needs {path.name})")
    text = path.read_text(encoding="utf-8", errors="replace")
    if "\x00" in text:
        raise CalibrationError(f"{path}: contains NUL bytes; the file is corrupt")
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]
    rd = csv.DictReader(io.StringIO("\n".join(lines)))
    cols = rd.fieldnames or []
    missing = [c for c in required if c not in cols]
    if missing:
        raise CalibrationError(
            f"{path}: header lacks column(s) {', '.join(missing)} (found {', '.join(cols) or '-'})"
        )
    return list(rd)


def _floats(path: Path, rows: list[dict[str, str]], cols: tuple[str, ...]) -> list[list[float]]:
    out, bad, first_bad = [], 0, None
    for i, r in enumerate(rows):
        try:
            vals = [float(r[c]) for c in cols]
        except (TypeError, ValueError, KeyError):
            vals = [math.nan]
        if all(map(math.isfinite, vals)):
            out.append(vals)
        else:  # unreadable, or nan/inf: a torn or damaged row, skipped and counted
            bad += 1
            first_bad = first_bad or i + 2
    if rows and bad > max(1, MAX_BAD_ROW_FRACTION * len(rows)):
        raise CalibrationError(
            f"{path}: {bad} of {len(rows)} rows are not numbers (first at line {first_bad}); "
            "the file is corrupt"
        )
    return out


def _check_monotonic(path: Path, t: np.ndarray, what: str = "t_s") -> None:
    d = np.diff(t)
    if np.any(d < 0):
        i = int(np.argmax(d < 0))
        raise CalibrationError(
            f"{path}: {what} goes backwards at data row {i + 2} ({t[i]:.3f} -> {t[i + 1]:.3f} s); "
            "timestamps must not decrease"
        )


def read_power_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = _read_table(path, ("t_s", "power_w"))
    vals = _floats(path, rows, ("t_s", "power_w"))
    if len(vals) < 3:
        raise CalibrationError(f"{path}: {len(vals)} readable power samples; need at least 3")
    a = np.array(vals)
    _check_monotonic(path, a[:, 0])
    if np.any(a[:, 1] < 0) or not np.all(np.isfinite(a)):
        raise CalibrationError(f"{path}: negative or non-finite power values")
    return a[:, 0], a[:, 1]


def read_temps_csv(path: Path, full_scale: float) -> dict[str, HeaterTrace]:
    rows = _read_table(path, ("t_s", "sensor", "actual_c", "target_c", "pwm_raw"))
    by: dict[str, list[list[float]]] = {}
    bad = 0
    for r in rows:
        name = {"T0": "hotend", "B": "bed"}.get(r.get("sensor") or "")
        if name is None:
            continue
        try:
            t, a = float(r["t_s"]), float(r["actual_c"])
            tgt = float(r["target_c"]) if r["target_c"] not in ("", None) else 0.0
            pwm = float(r["pwm_raw"]) if r["pwm_raw"] not in ("", None) else np.nan
        except (TypeError, ValueError):
            bad += 1
            continue
        if not all(map(math.isfinite, (t, a, tgt))):
            bad += 1
            continue
        by.setdefault(name, []).append([t, a, tgt, pwm])
    if rows and bad > max(1, MAX_BAD_ROW_FRACTION * len(rows)):
        raise CalibrationError(f"{path}: {bad} of {len(rows)} rows are not numbers; corrupt")
    out = {}
    for name, vals in by.items():
        a = np.array(vals)
        _check_monotonic(path, a[:, 0], f"t_s of sensor {name}")
        duty = np.clip(a[:, 3] / full_scale, 0.0, 1.0)
        out[name] = HeaterTrace(a[:, 0], a[:, 1], a[:, 2], duty)
    if "hotend" not in out and "bed" not in out:
        raise CalibrationError(f"{path}: no hotend (T0) or bed (B) temperature rows")
    return out


def read_serial_log(path: Path) -> list[tuple[float, str, str]]:
    if not path.exists():
        raise CalibrationError(f"{path}: missing (a session folder needs serial.log)")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]
    out, bad = [], 0
    for ln in lines:
        if not ln or ln.startswith("#"):
            continue
        parts = ln.split("\t", 3)
        try:
            out.append((float(parts[0]), parts[2], parts[3]))
        except (ValueError, IndexError):
            bad += 1
    if bad > max(1, MAX_BAD_ROW_FRACTION * max(1, len(out))):
        raise CalibrationError(f"{path}: {bad} lines are not 't_s<TAB>wall<TAB>dir<TAB>text'")
    t = np.array([x[0] for x in out])
    _check_monotonic(path, t)
    return out


def strip_line(sent: str) -> str:
    """A sent line without Marlin's line number and checksum."""
    return _CHECKSUM.sub("", _LINE_NO.sub("", sent.strip())).strip()


def command_word(line: str) -> str:
    """The command word of a G-code line, upper case (``"G1"``); "" for none."""
    s = line.split(";", 1)[0].strip()
    return s.split(None, 1)[0].upper() if s else ""


def _args(line: str) -> dict[str, float]:
    out = {}
    for tok in line.split(";", 1)[0].split()[1:]:
        try:
            out[tok[0].upper()] = float(tok[1:])
        except (ValueError, IndexError):
            continue
    return out


def machine_state(
    events: list[tuple[float, float, str]], t_end_s: float
) -> tuple[StepFn, StepFn, StepFn, float]:
    """Steppers-enabled, moving and fan signals from the job's commands.

    ``events`` are ``(t_sent_s, t_acked_s, line)``. Motion commands enable the steppers and
    count as moving until the next M84/M18 is acknowledged (Marlin acknowledges it after the
    planner has drained) and except during waits (M109/M190/G4, sent to acknowledged).
    """
    st_t, st_v = [events[0][0] if events else 0.0], [0.0]
    fan_t, fan_v = [st_t[0]], [0.0]
    waits: list[tuple[float, float]] = []
    on = False
    for ts, ta, line in events:
        w = command_word(line)
        if w in ("G0", "G1", "G2", "G3", "G28", "G29", "M17") and not on:
            on = True
            st_t.append(ts)
            st_v.append(1.0)
        elif w in ("M84", "M18") and on:
            on = False
            st_t.append(ta)
            st_v.append(0.0)
        elif w in ("M109", "M190", "G4"):
            waits.append((ts, ta))
        elif w == "M106":
            a = _args(line)
            if a.get("P", 0.0) == 0.0:
                fan_t.append(ts)
                fan_v.append(min(1.0, max(0.0, a.get("S", 255.0) / 255.0)))
        elif w == "M107":
            fan_t.append(ts)
            fan_v.append(0.0)
    steppers = StepFn(np.array(st_t), np.array(st_v), t_end_s)
    # moving = steppers on, minus waits
    mt, mv = list(st_t), list(st_v)
    for a, b in waits:
        on_at_b = float(steppers.at(np.array([b]))[0])
        mt += [a, b]
        mv += [0.0, on_at_b]
    order = np.argsort(np.array(mt), kind="stable")
    moving = StepFn(np.array(mt)[order], np.array(mv)[order], t_end_s)
    fan = StepFn(np.array(fan_t), np.array(fan_v), t_end_s)
    return steppers, moving, fan, float(sum(b - a for a, b in waits))


PLANNER_BLOCKS = 16  # Marlin BLOCK_BUFFER_SIZE default (time-estimators.md §2); the sim's too
_MOTION = ("G0", "G1", "G2", "G3")
_SYNC = ("M109", "M190", "G4", "G28", "G29", "M400", "M84", "M18")


def flow_signal(
    events: list[tuple[float, float, str]], t_end_s: float, blocks: int = PLANNER_BLOCKS
) -> StepFn:
    """Filament feed rate (mm/s) from the job's extruding moves, placed when they *execute*.

    A host that waits for each ``ok`` keeps the firmware's planner full: ``blocks`` moves
    queued behind the one executing, so move ``i`` is acknowledged when move ``i − blocks``
    starts and itself runs from the acknowledgement of move ``i + blocks`` to that of
    ``i + blocks + 1`` (the virtual printer's planner; a real Marlin differs by a block or two,
    seconds against the hotend's minutes). A synchronous command (M109, G4, G28, M84,
    ...) drains the planner before its own ``ok``: the last moves before it share the time up
    to that ``ok``. Handles absolute (M82) and relative (M83) extrusion and G92 E resets."""
    t0 = events[0][0] if events else 0.0
    ts, vs = [t0], [0.0]
    rel, e_pos = False, 0.0
    seg: list[tuple[float, float]] = []  # (ack, E advance) of the moves since the last sync
    prev_ack = t0

    def flush(seg: list[tuple[float, float]], start: float, drain_end: float) -> None:
        acks = [start] + [a for a, _ in seg]
        n = len(seg)
        first_drained = max(0, n - blocks - 1)
        k = n - first_drained
        last = acks[-1]
        for i, (_a, de) in enumerate(seg):
            if i < first_drained:  # acks[i + 1] is move i's own acknowledgement
                a0, a1 = acks[i + blocks + 1], acks[i + blocks + 2]
            else:  # drained after the last acknowledgement, evenly
                j = i - first_drained
                a0 = last + (drain_end - last) * j / k
                a1 = last + (drain_end - last) * (j + 1) / k
            if de > 0 and a1 > a0:
                ts.extend((a0, a1))
                vs.extend((de / (a1 - a0), 0.0))

    seg_start = t0
    for _ts, ta, line in events:
        w = command_word(line)
        if w == "M83":
            rel = True
        elif w == "M82":
            rel = False
        elif w == "G92":
            a = _args(line)
            if "E" in a:
                e_pos = a["E"]
        elif w in _MOTION:
            a = _args(line)
            de = 0.0
            if "E" in a:
                de = a["E"] if rel else a["E"] - e_pos
                e_pos = e_pos + a["E"] if rel else a["E"]
            seg.append((ta, de))
        elif w in _SYNC:
            flush(seg, seg_start, ta)
            seg, seg_start = [], ta
        prev_ack = max(prev_ack, ta)
    flush(seg, seg_start, max(prev_ack, t_end_s if not seg else prev_ack))
    order = np.argsort(np.array(ts), kind="stable")
    return StepFn(np.array(ts)[order], np.array(vs)[order], t_end_s)


def firmware_full_scale(meta: dict) -> float:
    """Full scale of the heater output the firmware named in ``meta`` prints (127 or 255)."""
    fw = str(meta.get("firmware", {}).get("name", "")).lower()
    # Marlin 2.x on 32-bit boards prints the 0..255 output, AVR 1.1.x 0..127
    # (firmware_logs/README.md, pwm_raw); the virtual printer names itself "... virtual
    # printer" and prints 0..127.
    if "virtual printer" in fw or "1.1." in fw or not fw:
        return PWM_FULL_SCALE_DEFAULT
    if "marlin" in fw:
        return 255.0
    return PWM_FULL_SCALE_DEFAULT


def require_heater_output(s: Session) -> None:
    """Refuse, in one line, a session the session fit cannot use: one whose temperature
    reports never carried a heater's output (no ``@:`` / ``B@:``, as OctoPrint's Virtual
    Printer), which would leave the power model without its largest loads."""
    blind = sorted(h for h, tr in s.heaters.items() if not np.isfinite(tr.duty).any())
    if blind:
        raise CalibrationError(
            f"{s.source}/temps.csv: no heater output (the '@:' / 'B@:' of the temperature "
            f"reports) for {', '.join(blind)}; the session fit needs it (for a firmware that "
            "does not report it, calibrate from a plug log with --power-csv and --gcode)"
        )


def load_session(folder: str | Path) -> Session:
    """Read a rig session folder (strictly) and align its streams."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: not a session folder (no such directory)")
    meta = _read_meta(folder / "meta.toml")
    full_scale = float(
        meta.get("printer", {}).get("pwm_full_scale")
        or meta.get("settings", {}).get("pwm_full_scale")
        or firmware_full_scale(meta)
    )
    serial = read_serial_log(folder / "serial.log")
    heaters = read_temps_csv(folder / "temps.csv", full_scale)
    pt, pw = read_power_csv(folder / "power.csv")
    job_t0, job_t1, print_t0 = _job_times(serial, folder / "serial.log")
    events = _acknowledged_lines(serial, job_t0, job_t1)
    steppers, moving, fan, waits_s = machine_state(events, float(max(pt[-1], job_t1)))

    overlap = min(pt[-1], job_t1) - max(pt[0], job_t0)
    if overlap < 0.9 * (job_t1 - job_t0):
        raise CalibrationError(
            f"{folder / 'power.csv'}: meter trace {pt[0]:.1f}..{pt[-1]:.1f} s does not cover the "
            f"print {job_t0:.1f}..{job_t1:.1f} s (session clock); wrong file or clock offset?"
        )
    window = _meter_window(meta, pt)
    return Session(
        name=folder.name,
        source=str(folder),
        power_t_s=pt,
        power_w=pw,
        power_window_s=window,
        heaters=heaters,
        job_t0_s=float(job_t0),
        job_t1_s=float(job_t1),
        print_t0_s=print_t0,
        gcode_lines=[e[2] for e in events],
        line_t_s=[(e[0], e[1]) for e in events],
        steppers=steppers,
        moving=moving,
        fan=fan,
        waits_s=waits_s,
        homing_s=[ta - ts for ts, ta, ln in events if command_word(ln) == "G28"],
        meta=meta,
        flow_mm_s=flow_signal(events, float(max(pt[-1], job_t1))),
    )


def _read_meta(meta_path: Path) -> dict:
    """meta.toml of a session folder, which must exist and parse."""
    if not meta_path.exists():
        raise CalibrationError(f"{meta_path}: missing (a session folder needs meta.toml)")
    try:
        return tomllib.loads(meta_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{meta_path}: not valid TOML ({exc})") from exc


def _job_times(
    serial: list[tuple[float, str, str]], path: Path
) -> tuple[float, float, float | None]:
    """(job start, job end, print phase start) from the host's events; a session without a
    complete job cannot be calibrated against."""
    job_t0 = job_t1 = print_t0 = None
    for t, d, text in serial:
        if d != "#":
            continue
        if text.startswith("print started") and job_t0 is None:
            job_t0 = t
        elif text.startswith("print done") or text.startswith("print cancelled"):
            job_t1 = t
        elif text == "phase: print" and print_t0 is None:
            print_t0 = t
    if job_t0 is None or job_t1 is None:
        raise CalibrationError(
            f"{path}: no 'print started' ... 'print done' events; "
            "the session has no complete job to calibrate against"
        )
    return job_t0, job_t1, print_t0


def _acknowledged_lines(
    serial: list[tuple[float, str, str]], job_t0: float, job_t1: float
) -> list[tuple[float, float, str]]:
    """The job's sent lines (each number once, M105 polls left out) with the time of the ok
    that acknowledged each, in order (ping-pong host); never acknowledged: the job end."""
    seen: set[str] = set()
    pending: list[list] = []
    for t, d, text in serial:
        if t < job_t0 or t > job_t1 + 1e-6:
            continue
        if d == ">":
            m = re.match(r"^N(\d+)\s", text)
            key = m.group(1) if m else None
            line = strip_line(text)
            if not line or line.startswith("M105") or (key is not None and key in seen):
                continue
            if key is not None:
                seen.add(key)
            pending.append([t, None, line])
        elif d == "<" and text.startswith("ok"):
            for p in pending:
                if p[1] is None:
                    p[1] = t
                    break
    return [(p[0], p[1] if p[1] is not None else job_t1, p[2]) for p in pending]


def _meter_window(meta: dict, t: np.ndarray) -> np.ndarray:
    """Averaging window of each reading. The rig's meters (PZEM-004T, SDM, the virtual meter)
    report a ~1 s mean (firmware_logs/README.md, power_w); other traces: the interval since
    the previous reading (an interval-average export)."""
    kind = str(meta.get("meter", {}).get("kind", "")).lower()
    if kind in ("pzem", "sdm120", "sdm230", "sdm630"):
        return np.full(t.shape, 1.0)
    d = np.diff(t, prepend=t[0] - (np.median(np.diff(t)) if t.size > 1 else 1.0))
    return np.maximum(d, 1e-3)
