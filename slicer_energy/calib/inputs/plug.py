"""Read smart-plug power exports (Tasmota, Shelly, Home Assistant, generic CSV) on one clock.

A calibration needs each reading's absolute time (to align it with the host's log) and the
window the reading averages. Formats, detected from the file's content:

* ``tasmota``: Tasmota's ``SENSOR``/``STATUS10`` JSON telemetry, one message per line as
  ``mosquitto_sub -v`` prints it (``tele/plug/SENSOR {"Time":"…","ENERGY":{…,"Power":57}}``,
  the topic is optional). ``Time`` is the device's local time unless it carries an offset.
  ``Power`` is the last one-second measurement (window 1 s, ``nominal_window_s``).
* ``home-assistant``: the History panel's "Download data" CSV, ``entity_id,state,last_changed``
  with ISO 8601 UTC times; ``unavailable``/``unknown`` rows are gaps. A state holds until the
  next change (Home Assistant records changes only), so a row stands for the plug's readings
  until the next row, up to 5 minutes; longer silences are reported as gaps.
* ``shelly-gen1``: ``/emeter/<n>/em_data.csv`` (Shelly EM/3EM Gen1), ``Date/time UTC,Active
  energy Wh (1),Returned energy Wh (1),Min V,Max V``: energy per interval (1 or 10 min),
  converted to the interval's mean power. Assumption: a row's time is its interval's start.
* ``shelly-gen2``: ``/emdata/<n>/data.csv`` (Shelly Pro EM/3EM, Gen2+), ``timestamp`` (Unix s)
  and ``[abc_]total_act_energy`` (Wh per interval, phases summed).
* ``generic``: a CSV with a time column (``timestamp``/``time``/``datetime``/``date``; ISO 8601
  or Unix seconds/milliseconds) and a power column (``power``/``W``/``power_w``/``apower``;
  ``kW`` in the name means kilowatts); a CSV with an interval column instead of times (the
  bare-trace format :func:`.trace.read_power_trace` reads) needs ``start``.

Times are returned as Unix seconds (UTC). Timestamps without a zone are taken in ``naive_tz``
(default: this computer's local zone) except where the format says UTC.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import CalibrationError
from .trace import read_power_trace

FORMATS = ("tasmota", "home-assistant", "shelly-gen1", "shelly-gen2", "generic")
NOMINAL_WINDOW_S = 1.0  # Tasmota/Shelly/HA power: the plug's latest ~1 s measurement
GAP_FACTOR = 10.0  # a spacing this many median intervals (and >= MIN_GAP_S) is a gap
MIN_GAP_S = 30.0
HA_MAX_HOLD_S = 300.0  # assumption: a plug integration updates at least every few minutes
KW_SUSPECT_MAX = 2.0  # a printer that heats never stays below 2 W; such a trace is in kW


@dataclass
class PlugTrace:
    """Power readings on the meter's clock: ``t_s`` (Unix s) is the END of each reading's
    averaging window ``window_s``."""

    path: str
    fmt: str
    t_s: np.ndarray
    power_w: np.ndarray
    window_s: np.ndarray
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (from, to) Unix s
    notes: list[str] = field(default_factory=list)

    @property
    def median_interval_s(self) -> float:
        return float(np.median(np.diff(self.t_s))) if self.t_s.size > 1 else 1.0

    def shifted(self, offset_s: float) -> PlugTrace:
        """The same readings on a clock ``offset_s`` behind (meter time − offset)."""
        return PlugTrace(
            self.path,
            self.fmt,
            self.t_s - offset_s,
            self.power_w,
            self.window_s,
            [(a - offset_s, b - offset_s) for a, b in self.gaps],
            list(self.notes),
        )


# ------------------------------------------------------------------------------ time parsing
def time_zone(naive_tz: str | None) -> _dt.tzinfo | None:
    """The zone a ``--*-tz`` option names (local, UTC, +02:00, Europe/Berlin); None = local."""
    if naive_tz in (None, "", "local"):
        return None
    if naive_tz.upper() in ("UTC", "Z"):
        return _dt.timezone.utc
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", naive_tz)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return _dt.timezone(sign * _dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(naive_tz)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise CalibrationError(f"unknown time zone {naive_tz!r} ({exc})") from None


_DAY_FIRST = ("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
              "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")  # fmt: skip
_FRAC = re.compile(r"(\d\d:\d\d:\d\d)\.(\d+)")


def parse_time(text: str, naive_tz: str | None = None) -> float:
    """Unix seconds from ISO 8601 (``Z``, offsets, 1..9 fraction digits), ``YYYY-MM-DD HH:MM``,
    or a Unix time in seconds (or milliseconds, values above 1e11). Naive times are taken in
    ``naive_tz`` ("local", "UTC", "+02:00" or an IANA name)."""
    s = text.strip().strip('"')
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        return v / 1000.0 if v > 1e11 else v
    s = s.replace("Z", "+00:00").replace("z", "+00:00")
    s = _FRAC.sub(lambda m: f"{m.group(1)}.{(m.group(2) + '000000')[:6]}", s)
    try:
        d = _dt.datetime.fromisoformat(s)
    except ValueError:
        d = None
        for f in _DAY_FIRST:  # loggers that write day-first dates (corpus ender3_pzem017)
            try:
                d = _dt.datetime.strptime(s, f)
                break
            except ValueError:
                continue
        if d is None:
            raise ValueError(f"not a time: {text!r}") from None
    if d.tzinfo is None:
        z = time_zone(naive_tz)
        d = d.astimezone() if z is None else d.replace(tzinfo=z)
    return d.timestamp()


# ------------------------------------------------------------------------------ detection
def detect_format(path: str | Path) -> str:
    """Which of :data:`FORMATS` the file is, from its first lines; an error names the file."""
    path = Path(path)
    head = _head(path)
    first = next((ln for ln in head if ln.strip()), "")
    if "{" in first and ('"ENERGY"' in first or '"StatusSNS"' in first):
        return "tasmota"
    cols = [c.strip().strip('"').lower() for c in re.split(r"[,;]", first)]
    if {"entity_id", "state", "last_changed"} <= set(cols):
        return "home-assistant"
    if cols and cols[0].startswith("date/time utc"):
        return "shelly-gen1"
    if "timestamp" in cols and any(c.endswith("total_act_energy") for c in cols):
        return "shelly-gen2"
    if _power_col(cols) is not None and (
        _time_col(cols) is not None or _interval_col(cols) is not None
    ):
        return "generic"
    raise CalibrationError(
        f"{path}: unknown power-trace format (first line {first[:120]!r}); supported: Tasmota "
        "SENSOR JSON lines, Home Assistant history CSV (entity_id,state,last_changed), Shelly "
        "em_data.csv / emdata data.csv, or a CSV with a time (or interval) and a power column"
    )


def has_intervals(path: str | Path) -> bool:
    """Whether a CSV carries the logger's own interval per reading (``Delta Time (s)``), the
    bare-trace format :func:`.trace.read_power_trace` reads."""
    first = next((ln for ln in _head(Path(path)) if ln.strip()), "")
    cols = [c.strip().strip('"').lower() for c in re.split(r"[,;]", first)]
    return _interval_col(cols) is not None


def _head(path: Path, n: int = 5) -> list[str]:
    if not path.exists():
        raise CalibrationError(f"{path}: power trace not found")
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        return [f.readline() for _ in range(n)]


def _time_col(cols: list[str]) -> int | None:
    for name in ("timestamp", "time", "datetime", "date", "unix", "epoch", "last_changed"):
        for i, c in enumerate(cols):
            if c == name or c.startswith(name + " ") or c.startswith(name + "_"):
                return i
    return None


def _interval_col(cols: list[str]) -> int | None:
    for i, c in enumerate(cols):
        if c.startswith("delta time") or c in ("delta_s", "interval_s", "dt_s"):
            return i
    return None


def _power_col(cols: list[str]) -> int | None:
    for name in ("power_w", "power (w)", "power_kw", "power (kw)", "apower", "power", "w", "kw"):
        for i, c in enumerate(cols):
            if c == name:
                return i
    for i, c in enumerate(cols):
        if c.startswith("power") or c.endswith("_power") or c.endswith(" power"):
            return i
    return None


# ------------------------------------------------------------------------------ readers
def read_plug(  # noqa: PLR0912 - one branch per plug export format
    path: str | Path,
    *,
    fmt: str = "auto",
    naive_tz: str | None = None,
    unit: str = "auto",
    entity: str | None = None,
    start: str | None = None,
    nominal_window_s: float = NOMINAL_WINDOW_S,
) -> PlugTrace:
    """Read a smart-plug export (format detected unless ``fmt`` names one of :data:`FORMATS`).

    ``unit`` "W"/"kW" overrides the header; ``entity`` picks one Home Assistant entity;
    ``start`` anchors an interval-only CSV. Gaps (unavailable rows, long silences) are listed
    in the result, never filled.
    """
    path = Path(path)
    kind = detect_format(path) if fmt == "auto" else fmt
    if kind not in FORMATS:
        raise CalibrationError(f"unknown plug format {fmt!r}; one of {', '.join(FORMATS)}")
    note = None
    if kind == "tasmota":
        t, p = _read_tasmota(path, naive_tz)
        w = np.full(t.shape, nominal_window_s)
        unav = []
        scale = 1.0
    elif kind == "home-assistant":
        t, p, unav = _read_ha(path, entity)
        t, w = _ha_holds(t, unav, nominal_window_s)
        scale = 1.0
    elif kind in ("shelly-gen1", "shelly-gen2"):
        t, p, w = _read_shelly(path, kind)
        unav, scale = [], 1.0
    else:
        t, p, w, scale, note = _read_generic(path, naive_tz, start, nominal_window_s)
        unav = []
    if unit.lower() == "kw":
        scale = 1000.0
    elif unit.lower() == "w":
        scale = 1.0
    elif unit.lower() != "auto":
        raise CalibrationError(f"unknown power unit {unit!r}; W or kW")
    p = p * scale
    if t.size < 3:
        raise CalibrationError(f"{path}: {t.size} readable power readings; need at least 3")
    if unit.lower() == "auto" and scale == 1.0 and float(np.max(p)) < KW_SUSPECT_MAX:
        raise CalibrationError(
            f"{path}: power never exceeds {np.max(p):.3g}; if the values are kW pass unit kW "
            "(--plug-unit kW), if they really are W pass --plug-unit W"
        )
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise CalibrationError(f"{path}: negative or non-finite power values")
    tr = PlugTrace(str(path), kind, t, p, w)
    if kind == "generic" and note:
        tr.notes.append(note)
    tr.gaps = _gaps(t, w, unav)
    if tr.gaps:
        tot = sum(b - a for a, b in tr.gaps)
        tr.notes.append(
            f"{path.name}: {len(tr.gaps)} gap(s) without readings, {tot:.0f} s in all "
            f"(longest {max(b - a for a, b in tr.gaps):.0f} s); not filled"
        )
    return tr


def _ha_holds(
    t: np.ndarray, unav: list[tuple[float, float]], w0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Home Assistant records a state when it changes: a reading at ``t_i`` (the plug's
    ``w0`` mean ending there) held until the next row means the plug kept reporting the same
    value, so the reading stands for ``[t_i − w0, t_next − w0]``. Holds longer than
    ``HA_MAX_HOLD_S`` or across an ``unavailable`` row are not assumed (left as gaps)."""
    t_end, w = t.copy(), np.full(t.shape, w0)
    if t.size < 2:
        return t_end, w
    nxt = t[1:]
    hold = nxt - t[:-1]
    starts = np.array([a for a, _b in unav])
    blocked = np.array(
        [bool(np.any((starts >= a) & (starts < b))) for a, b in zip(t[:-1], nxt, strict=True)]
    )
    ok = (hold > w0) & (hold <= HA_MAX_HOLD_S) & ~blocked
    idx = np.nonzero(ok)[0]
    t_end[idx] = nxt[idx] - w0
    w[idx] = t_end[idx] - (t[idx] - w0)
    return t_end, w


def _gaps(
    t: np.ndarray, w: np.ndarray, unav: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    d = (t[1:] - w[1:]) - t[:-1]  # from a reading's window end to the next one's start
    med = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    lim = max(GAP_FACTOR * med, MIN_GAP_S)
    out = [(float(t[i]), float(t[i + 1] - w[i + 1])) for i in np.nonzero(d > lim)[0]]
    out += unav
    out.sort()
    merged: list[tuple[float, float]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _check_order(path: Path, t: np.ndarray, lines: list[int]) -> None:
    d = np.diff(t)
    if np.any(d < 0):
        i = int(np.argmax(d < 0))
        raise CalibrationError(
            f"{path}: line {lines[i + 1]}: time goes backwards "
            f"({_iso(t[i])} -> {_iso(t[i + 1])}); timestamps must not decrease"
        )


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")


def _dedupe(t: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop repeated timestamps (a logger writing the same reading twice), keeping the last."""
    keep = np.append(np.diff(t) > 0, True)
    return (t[keep], *(c[keep] for c in cols))


def _read_tasmota(path: Path, naive_tz: str | None) -> tuple[np.ndarray, np.ndarray]:
    t, p, lines, bad = [], [], [], []
    with path.open(encoding="utf-8", errors="replace") as f:
        for ln, raw in enumerate(f, start=1):
            i = raw.find("{")
            if i < 0:
                continue
            try:
                msg = json.loads(raw[i:])
                msg = msg.get("StatusSNS", msg)  # STATUS10 wraps the SENSOR message
                power = msg["ENERGY"]["Power"]
                power = sum(power) if isinstance(power, list) else float(power)
                tt = parse_time(str(msg["Time"]), naive_tz)
            except (ValueError, KeyError, TypeError, AttributeError):
                bad.append(ln)
                continue
            t.append(tt)
            p.append(power)
            lines.append(ln)
    if bad and len(bad) > max(2, 0.05 * (len(t) + len(bad))):
        raise CalibrationError(
            f"{path}: {len(bad)} Tasmota lines without Time and ENERGY.Power (first line "
            f"{bad[0]}); the file is corrupt or not SENSOR telemetry"
        )
    ta = np.array(t, dtype=float)
    _check_order(path, ta, lines)
    ta, pa = _dedupe(ta, np.array(p, dtype=float))
    return ta, pa


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if "\x00" in text:
        raise CalibrationError(f"{path}: contains NUL bytes; the file is corrupt")
    first = text.split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    rows = [r for r in rows if any(x.strip() for x in r)]
    if not rows:
        raise CalibrationError(f"{path}: empty file")
    return [h.strip().lower() for h in rows[0]], rows[1:]


def _read_ha(
    path: Path, entity: str | None
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    head, rows = _rows(path)
    ie, isv, it = head.index("entity_id"), head.index("state"), head.index("last_changed")
    by: dict[str, list[tuple[float, str, int]]] = {}
    for ln, r in enumerate(rows, start=2):
        try:
            by.setdefault(r[ie].strip(), []).append((parse_time(r[it], "UTC"), r[isv].strip(), ln))
        except (ValueError, IndexError):
            raise CalibrationError(f"{path}: line {ln}: unreadable row {r!r}") from None

    def numeric(rs):
        return sum(1 for _t, s, _l in rs if _num(s) is not None)

    if entity is not None:
        if entity not in by:
            raise CalibrationError(f"{path}: no entity {entity!r}; found {', '.join(sorted(by))}")
        name = entity
    else:
        power_like = [e for e, rs in by.items() if numeric(rs) >= 3]
        if len(power_like) != 1:
            raise CalibrationError(
                f"{path}: {len(power_like)} entities with numeric states "
                f"({', '.join(sorted(power_like)) or '-'}); choose one with --plug-entity"
            )
        name = power_like[0]
    rs = sorted(by[name])
    t, p, unav = [], [], []
    down_from = None
    for tt, s, _ln in rs:
        v = _num(s)
        if v is None:  # unavailable / unknown / empty: the plug was not reporting
            if down_from is None:
                down_from = tt
            continue
        if down_from is not None:
            unav.append((down_from, tt))
            down_from = None
        t.append(tt)
        p.append(v)
    if down_from is not None:
        unav.append((down_from, rs[-1][0]))
    ta, pa = _dedupe(np.array(t, dtype=float), np.array(p, dtype=float))
    return ta, pa, unav


def _num(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def _read_shelly(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy per interval -> mean power over it; the reading's time is the interval's end."""
    head, rows = _rows(path)
    if kind == "shelly-gen1":
        it = 0
        ie = [i for i, h in enumerate(head) if h.startswith("active energy")]
        tz = "UTC"  # the header says so
    else:
        it = head.index("timestamp")
        ie = [i for i, h in enumerate(head) if h.endswith("total_act_energy")]
        tz = "UTC"
    t, e, lines = [], [], []
    for ln, r in enumerate(rows, start=2):
        try:
            t.append(parse_time(r[it], tz))
            e.append(sum(float(r[i]) for i in ie))
            lines.append(ln)
        except (ValueError, IndexError):
            if ln == len(rows) + 1:  # a download cut mid-line
                continue
            raise CalibrationError(f"{path}: line {ln}: unreadable row {r!r}") from None
    ta = np.array(t, dtype=float)
    _check_order(path, ta, lines)
    if ta.size < 2:
        raise CalibrationError(f"{path}: fewer than 2 intervals")
    d = np.diff(ta)
    step = float(np.median(d))
    # each row covers [t, t + step): the record interval is the device's (1 or 10 min)
    win = np.full(ta.shape, step)
    p = np.array(e) * 3600.0 / win
    return ta + win, p, win


def _read_generic(
    path: Path, naive_tz: str | None, start: str | None, nominal_window_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str | None]:
    head, rows = _rows(path)
    ip, it = _power_col(head), _time_col(head)
    scale = 1000.0 if ip is not None and "kw" in head[ip].replace(" ", "") else 1.0
    if it is None:
        # interval-only trace: the bare-trace reader owns that format
        if start is None:
            raise CalibrationError(
                f"{path}: has sample intervals but no timestamps; give the time of its first "
                "reading (--plug-start 2026-05-01T14:03:00+02:00) to align it with the host log"
            )
        tr = read_power_trace(path)
        t0 = parse_time(start, naive_tz)
        d = np.diff(tr.t_s, prepend=tr.t_s[0] - (tr.t_s[1] - tr.t_s[0]))
        return tr.t_s + t0, tr.power_w, np.maximum(d, 1e-3), 1.0, None
    t, p, lines = [], [], []
    for ln, r in enumerate(rows, start=2):
        try:
            t.append(parse_time(r[it], naive_tz))
            p.append(float(r[ip]))
            lines.append(ln)
        except (ValueError, IndexError):
            raise CalibrationError(
                f"{path}: line {ln}: cannot read time {r[it] if it < len(r) else ''!r} / "
                f"power {r[ip] if ip < len(r) else ''!r}"
            ) from None
    ta = np.array(t, dtype=float)
    _check_order(path, ta, lines)
    idt = _interval_col(head)
    if idt is not None and ta.size > 2:
        dts = np.array([float(r[idt]) for r in rows if len(r) > idt and _num(r[idt]) is not None])
        if dts.size == ta.size and time_resolution_s(ta) > 2.0 * float(np.median(dts)):
            # times coarser than the sampling (e.g. whole minutes): the logger's own intervals
            # give the spacing, anchored at the first timestamp
            note = f"{path.name}: times have {time_resolution_s(ta):g} s resolution; spacing from "
            note += f"the '{head[idt]}' column, anchored at the first time"
            tt = ta[0] + np.cumsum(dts) - dts[0]
            return tt, np.array(p, dtype=float), np.maximum(dts, 1e-3), scale, note
    ta, pa = _dedupe(ta, np.array(p, dtype=float))
    return ta, pa, np.full(ta.shape, nominal_window_s), scale, None


def time_resolution_s(t: np.ndarray) -> float:
    """The coarsest step (60, 1, 0.1, 0.01 or 0.001 s) all of ``t`` is rounded to."""
    for res in (60.0, 1.0, 0.1, 0.01):
        if np.all(np.abs(np.round(t / res) * res - t) < 1e-4):
            return res
    return 0.001
