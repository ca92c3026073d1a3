"""The session folder: append-only, flushed at least every ``flush_interval_s`` (0.5 s).

``<out>/<YYYYmmdd-HHMMSS>-<label>/``

- ``serial.log``: every line sent (``>``), received (``<``) and every host event (``#``), as
  ``t_s <TAB> wall <TAB> dir <TAB> text``; ``t_s`` is the session clock (monotonic seconds, or
  simulated seconds in a simulation), ``wall`` the UTC wall clock (ISO 8601).
- ``power.csv``: ``t_s,wall_s,power_w,voltage_v,current_a,energy_wh,frequency_hz,power_factor``.
- ``temps.csv``: ``t_s,wall_s,sensor,actual_c,target_c,pwm_raw,power_w`` (one row per sensor).
- ``meta.toml``: printer, firmware capabilities, meter, G-code file and its SHA-256, settings,
  software version (rewritten atomically when something new is known; never holds data).
- At a clean end: ``summary.toml`` (duration, kWh, per-phase split) and Parquet copies.

Data files are only ever appended to and flushed by a background thread, so after Ctrl-C,
``kill -9`` or a vanished port everything up to the last flush is on disk; readers
(:func:`read_power`, :func:`read_temps`, :func:`read_serial`) skip a torn last line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import SessionError
from .meters import MeterSample, integrate_energy_j
from .protocol import HeaterReading

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

POWER_COLUMNS = (
    "t_s",
    "wall_s",
    "power_w",
    "voltage_v",
    "current_a",
    "energy_wh",
    "frequency_hz",
    "power_factor",
)
TEMP_COLUMNS = ("t_s", "wall_s", "sensor", "actual_c", "target_c", "pwm_raw", "power_w")
SERIAL_HEADER = (
    "# slicer-energy serial log v1: t_s<TAB>wall_utc<TAB>dir(> sent, < received, # event)"
    "<TAB>text\n"
)
FORMAT_VERSION = 1


def _fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.6g}" if abs(x) < 1e5 else f"{x:.3f}"
    return str(x)


def _wall_iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


class SessionLogger:
    """Writes one session folder. Thread-safe; writer calls only append to a buffer."""

    def __init__(
        self,
        out_dir: str | Path,
        label: str = "session",
        *,
        meta: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        flush_interval_s: float = 0.5,
        name: str | None = None,
    ) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
        self.folder = Path(out_dir) / (name or f"{stamp}-{safe}")
        try:
            self.folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError as exc:
            raise SessionError(
                f"session folder {self.folder} exists; refusing to overwrite"
            ) from exc
        except OSError as exc:
            raise SessionError(f"cannot create session folder {self.folder}: {exc}") from exc
        self.clock = clock
        self._lock = threading.Lock()
        self._serial = open(self.folder / "serial.log", "a", encoding="utf-8", newline="\n")
        self._power = open(self.folder / "power.csv", "a", encoding="utf-8", newline="")
        self._temps = open(self.folder / "temps.csv", "a", encoding="utf-8", newline="")
        self._serial.write(SERIAL_HEADER)
        self._power.write(",".join(POWER_COLUMNS) + "\n")
        self._temps.write(",".join(TEMP_COLUMNS) + "\n")
        self.meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "software": {"name": "slicer-energy", "version": __version__},
            "session": {
                "label": label,
                "started_utc": _wall_iso(time.time()),
                "clock": "monotonic",
            },
        }
        for k, v in (meta or {}).items():
            self.meta[k] = v
        self.write_meta()
        self.phases: list[tuple[str, float]] = []
        self.n_power = 0
        self.n_temps = 0
        self.n_serial = 0
        self.closed = False
        self._stop = threading.Event()
        self._flush_interval_s = flush_interval_s
        self._flusher = threading.Thread(target=self._flush_loop, name="session-flush", daemon=True)
        self._flush_all()
        self._flusher.start()

    # ------------------------------------------------------------------ writers
    def serial(self, direction: str, text: str, t_s: float | None = None) -> None:
        t = self.clock() if t_s is None else t_s
        clean = text.replace("\t", " ").replace("\n", "\\n")
        line = f"{t:.4f}\t{_wall_iso(time.time())}\t{direction}\t{clean}\n"
        with self._lock:
            if not self.closed:
                self._serial.write(line)
                self.n_serial += 1

    def event(self, text: str, t_s: float | None = None) -> None:
        self.serial("#", text, t_s)

    def phase(self, name: str, t_s: float | None = None) -> None:
        """Start a phase (heatup, print, cooldown...): recorded in serial.log as an event."""
        t = self.clock() if t_s is None else t_s
        self.phases.append((name, t))
        self.serial("#", f"phase: {name}", t)

    def power(self, s: MeterSample) -> None:
        row = (
            f"{s.t_s:.4f}",
            f"{time.time():.3f}",
            s.power_w,
            s.voltage_v,
            s.current_a,
            s.energy_wh,
            s.frequency_hz,
            s.power_factor,
        )
        line = ",".join(_fmt(x) for x in row) + "\n"
        with self._lock:
            if not self.closed:
                self._power.write(line)
                self.n_power += 1

    def temps(self, heaters: Mapping[str, HeaterReading], t_s: float | None = None) -> None:
        t = self.clock() if t_s is None else t_s
        wall = f"{time.time():.3f}"
        buf = io.StringIO()
        for name, h in heaters.items():
            row = (f"{t:.4f}", wall, name, h.actual_c, h.target_c, h.pwm_raw, h.power_w)
            buf.write(",".join(_fmt(x) for x in row) + "\n")
        with self._lock:
            if not self.closed:
                self._temps.write(buf.getvalue())
                self.n_temps += len(heaters)

    def update_meta(self, **tables: Any) -> None:
        with self._lock:
            for k, v in tables.items():
                if isinstance(v, Mapping) and isinstance(self.meta.get(k), dict):
                    self.meta[k].update(v)
                else:
                    self.meta[k] = v
        self.write_meta()

    def write_meta(self) -> None:
        tmp = self.folder / "meta.toml.tmp"
        tmp.write_text(dump_toml(self.meta), encoding="utf-8")
        os.replace(tmp, self.folder / "meta.toml")

    # ------------------------------------------------------------------ flushing
    def _flush_all(self, sync: bool = False) -> None:
        with self._lock:
            for f in (self._serial, self._power, self._temps):
                if not f.closed:
                    f.flush()
                    if sync:
                        os.fsync(f.fileno())

    def _flush_loop(self) -> None:
        n = 0
        while not self._stop.wait(self._flush_interval_s):
            n += 1
            try:
                self._flush_all(sync=n % 10 == 0)  # fsync every ~5 s against power loss
            except (OSError, ValueError):
                return

    def close(
        self,
        status: str = "finished",
        *,
        summary: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Flush and close the files; then write summary.toml (with the ``extra`` tables, e.g.
        the meter's health) and the Parquet copies."""
        if self.closed:
            return None
        self.event(f"session end: {status}")
        self._stop.set()
        self._flusher.join(timeout=2.0)
        self._flush_all(sync=True)
        with self._lock:
            self.closed = True
            for f in (self._serial, self._power, self._temps):
                f.close()
        self.update_meta(session={"ended_utc": _wall_iso(time.time()), "status": status})
        if not summary:
            return None
        s = summarize(self.folder)
        s["status"] = status
        s.update(extra or {})
        (self.folder / "summary.toml").write_text(dump_toml(s), encoding="utf-8")
        write_parquet(self.folder)
        return s


# ------------------------------------------------------------------ reading back


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]  # torn last line of a killed writer
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    ncol = len(rows[0]) if rows else 0
    return [r for r in rows if len(r) == ncol and None not in r.values()]


def _num(x: str) -> float | None:
    return float(x) if x not in ("", None) else None


def read_power(folder: str | Path) -> list[MeterSample]:
    rows = _read_csv(Path(folder) / "power.csv")
    out = []
    for r in rows:
        try:
            out.append(
                MeterSample(
                    t_s=float(r["t_s"]),
                    power_w=float(r["power_w"]),
                    voltage_v=_num(r["voltage_v"]),
                    current_a=_num(r["current_a"]),
                    energy_wh=_num(r["energy_wh"]),
                    frequency_hz=_num(r["frequency_hz"]),
                    power_factor=_num(r["power_factor"]),
                )
            )
        except (KeyError, ValueError):
            continue
    return out


def read_temps(folder: str | Path) -> list[dict[str, Any]]:
    out = []
    for r in _read_csv(Path(folder) / "temps.csv"):
        try:
            out.append(
                {
                    "t_s": float(r["t_s"]),
                    "sensor": r["sensor"],
                    "actual_c": float(r["actual_c"]),
                    "target_c": _num(r["target_c"]),
                    "pwm_raw": _num(r["pwm_raw"]),
                    "power_w": _num(r["power_w"]),
                }
            )
        except (KeyError, ValueError):
            continue
    return out


def read_serial(folder: str | Path) -> list[tuple[float, str, str, str]]:
    """(t_s, wall_utc, dir, text) per line; a torn last line is skipped."""
    path = Path(folder) / "serial.log"
    out = []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]
    for ln in lines:
        if not ln or ln.startswith("# slicer-energy"):
            continue
        parts = ln.split("\t", 3)
        if len(parts) != 4:
            continue
        try:
            out.append((float(parts[0]), parts[1], parts[2], parts[3]))
        except ValueError:
            continue
    return out


def read_meta(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "meta.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SessionError(f"{path}: {exc}") from exc


def summarize(folder: str | Path) -> dict[str, Any]:
    """Duration, energy (integral of power samples; meter counter as a cross-check) and the
    per-phase split from the ``phase:`` events in serial.log."""
    folder = Path(folder)
    power = read_power(folder)
    t = [s.t_s for s in power]
    p = [s.power_w for s in power]
    e_j = integrate_energy_j(t, p) if len(power) > 1 else 0.0
    counters = [s.energy_wh for s in power if s.energy_wh is not None]
    out: dict[str, Any] = {
        "samples": len(power),
        "duration_s": (t[-1] - t[0]) if len(t) > 1 else 0.0,
        "energy_kwh": e_j / 3.6e6,
        "mean_power_w": e_j / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0,
    }
    if len(counters) > 1:
        out["meter_counter_kwh"] = (counters[-1] - counters[0]) / 1000.0
    events = [
        (ts, txt[len("phase: ") :])
        for ts, _w, d, txt in read_serial(folder)
        if d == "#" and txt.startswith("phase: ")
    ]
    phases: dict[str, dict[str, float]] = {}
    if events and len(t) > 1:
        bounds = [*events, (t[-1], None)]
        for (t0, name), (t1, _) in zip(bounds, bounds[1:], strict=False):
            e = _energy_between(t, p, t0, max(t0, t1))
            ph = phases.setdefault(name, {"duration_s": 0.0, "energy_kwh": 0.0})
            ph["duration_s"] += max(0.0, t1 - t0)
            ph["energy_kwh"] += e / 3.6e6
        for ph in phases.values():
            ph["mean_power_w"] = (
                ph["energy_kwh"] * 3.6e6 / ph["duration_s"] if ph["duration_s"] > 0 else 0.0
            )
    out["phases"] = phases
    return out


def _energy_between(t: list[float], p: list[float], t0: float, t1: float) -> float:
    """Integral of the linearly interpolated power curve over [t0, t1] (clipped to the data)."""
    if t1 <= t0 or len(t) < 2:
        return 0.0
    e = 0.0
    for i in range(1, len(t)):
        a, b = max(t[i - 1], t0), min(t[i], t1)
        if b <= a:
            continue
        span = t[i] - t[i - 1]

        def at(x: float, i: int = i, span: float = span) -> float:
            return p[i - 1] + (p[i] - p[i - 1]) * ((x - t[i - 1]) / span if span > 0 else 0.0)

        e += 0.5 * (at(a) + at(b)) * (b - a)
    return e


def write_parquet(folder: str | Path) -> list[Path]:
    """Parquet copies of power.csv, temps.csv and serial.log (needs pyarrow)."""
    import pandas as pd

    folder = Path(folder)
    written = []
    frames = {
        "power": pd.DataFrame([s.as_dict() for s in read_power(folder)]),
        "temps": pd.DataFrame(read_temps(folder)),
        "serial": pd.DataFrame(read_serial(folder), columns=["t_s", "wall_utc", "dir", "text"]),
    }
    for name, df in frames.items():
        path = folder / f"{name}.parquet"
        df.to_parquet(path, index=False)
        written.append(path)
    return written


# ------------------------------------------------------------------ TOML writer


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{esc}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        return '""'
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dump_toml(d: Mapping[str, Any], prefix: str = "") -> str:
    """Small TOML writer for nested dicts of scalars and lists (what meta/summary hold)."""
    lines = []
    tables = []
    for k, v in d.items():
        if isinstance(v, Mapping):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    out = "\n".join(lines)
    for k, v in tables:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        body = dump_toml(v, name)
        out += ("\n\n" if out else "") + f"[{name}]\n" + body
    return out.strip("\n") + ("\n" if not prefix else "")
