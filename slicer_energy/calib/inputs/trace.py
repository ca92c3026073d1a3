"""A bare power trace (watts only, no heater PWM) and what can be read off it without a model.

* **meter gaps** (readings missing for longer than a few sampling intervals) are filled with
  the mean power of the readings around them, not bridged by a straight line
  (:meth:`PowerTrace.interval_energy_j`).
* **the job** and **interruptions**: stretches inside the job where the printer drew only its
  board power (heaters and steppers off) or its board + stepper power with the heaters off (a
  reset or a pause, usually after a gap in the meter log) are events of that run, not of its
  G-code; their timing (never their energy) is read here (:func:`interruptions`). An idle
  stretch followed by most of the run is a *restart*: the earlier attempts are left out of the
  job window (:func:`job_window`).
* **bed vs the rest**: a bang-bang bed (Marlin without ``PIDTEMPBED``) switches its full power
  on and off, so the bed's share of every "bed on" reading is the reading minus the local
  bed-off level (:func:`bed_power_w`).

:mod:`slicer_energy.calib.trace` fits the G-code timeline to these.
"""

from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import CalibrationError

GAP_FACTOR = 3.0  # a reading interval this many times the median is a gap in the log
GAP_FILL_S = 120.0  # gaps are filled with the mean power of the readings this close
IDLE_BAND_W = 3.0  # board-only level: within this of the trace's idle power
IDLE_MIN_S = 60.0  # an idle stretch this long inside a job is an interruption
HEATERS_OFF_MIN_S = 30.0  # so is a stretch this long at the board + stepper level
RESTART_SHARE = 0.6  # an idle stretch after which this share of the active time follows
MERGE_S = 60.0  # interruptions closer than this are one


@dataclass
class PowerTrace:
    path: str
    t_s: np.ndarray
    power_w: np.ndarray

    def gap_mask(self) -> np.ndarray:
        """True for each reading interval that is a gap in the log (missing readings)."""
        d = np.diff(self.t_s)
        if d.size == 0:
            return np.zeros(0, bool)
        return d > max(GAP_FACTOR * float(np.median(d)), 5.0)

    def interval_energy_j(self) -> np.ndarray:
        """Energy of each interval between readings: trapezoid, except over gaps, which get
        the mean power of the readings within ``GAP_FILL_S`` on both sides."""
        t, p = self.t_s, self.power_w
        d = np.diff(t)
        e = 0.5 * (p[1:] + p[:-1]) * d
        for i in np.nonzero(self.gap_mask())[0]:
            near = ((t >= t[i] - GAP_FILL_S) & (t <= t[i])) | (
                (t >= t[i + 1]) & (t <= t[i + 1] + GAP_FILL_S)
            )
            e[i] = float(np.mean(p[near])) * d[i]
        return e

    def cumulative_j(self) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(self.interval_energy_j())))

    def energy_j(self) -> float:
        return float(self.cumulative_j()[-1])

    def gap_s(self) -> float:
        return float(np.sum(np.diff(self.t_s)[self.gap_mask()]))

    def idle_w(self) -> float:
        """The board-only level: median of the readings within 5 W of the lowest."""
        p = self.power_w
        return float(np.median(p[p <= float(np.min(p)) + 5.0]))


def read_power_trace(path: str | Path) -> PowerTrace:
    """CSV with a power column (``W``/``Power (W)``/``power_w``) and either a per-sample
    interval column (``Delta Time (s)``) or a timestamp (ISO or Unix seconds)."""
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{path}: power trace not found")
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 4:
        raise CalibrationError(f"{path}: fewer than 3 data rows")
    head = [h.strip().lower() for h in rows[0]]

    def col(*names: str) -> int | None:
        for n in names:
            for i, h in enumerate(head):
                if h == n or h.startswith(n):
                    return i
        return None

    ip = col("power (w)", "power_w", "power", "w", "apower")
    idt = col("delta time (s)", "delta_s", "interval_s")
    its = col("timestamp", "t_s", "time")
    if ip is None or (idt is None and its is None):
        raise CalibrationError(
            f"{path}: need a power column and a time or interval column; header is {rows[0]}"
        )
    p, t = [], []
    acc = 0.0
    for ln, r in enumerate(rows[1:], start=2):
        try:
            pw = float(r[ip])
            if idt is not None:
                acc += float(r[idt])
                tt = acc
            else:
                s = r[its].strip()
                try:
                    tt = float(s)
                except ValueError:
                    tt = _dt.datetime.fromisoformat(s).timestamp()
        except (ValueError, IndexError) as exc:
            raise CalibrationError(f"{path}: line {ln}: {exc}") from None
        p.append(pw)
        t.append(tt)
    ta = np.array(t)
    if np.any(np.diff(ta) < 0):
        i = int(np.argmax(np.diff(ta) < 0))
        raise CalibrationError(f"{path}: time goes backwards at line {i + 3}")
    return PowerTrace(str(path), ta - ta[0], np.array(p))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in ``mask``."""
    out, i, n = [], 0, mask.size
    while i < n:
        if mask[i]:
            j = i
            while j + 1 < n and mask[j + 1]:
                j += 1
            out.append((i, j))
            i = j + 1
        else:
            i += 1
    return out


def _idle_stretches(tr: PowerTrace, level_w: float, min_s: float) -> list[tuple[float, float]]:
    """Stretches (t0, t1) of at least ``min_s`` in which every reading is at or below
    ``level_w`` (a gap in the log next to such a stretch counts as part of it)."""
    p, t = tr.power_w, tr.t_s
    out = []
    for i, j in _runs(p <= level_w):
        t0 = t[i - 1] if i > 0 else t[i]  # from the last reading above the level
        t1 = t[j + 1] if j + 1 < t.size else t[j]
        if t1 - t0 >= min_s:
            out.append((float(t0), float(t1)))
    return out


def job_window(tr: PowerTrace) -> tuple[float, float]:
    """The job: from the first reading above the board-only level (the first reading if the
    trace starts with the printer busy) to the last one above it.

    An idle stretch of at least ``IDLE_MIN_S`` inside it that is followed by at least
    ``RESTART_SHARE`` of the active time is a restart: the job starts after it (aborted
    attempts before it are not part of the print the G-code describes)."""
    p, t = tr.power_w, tr.t_s
    idle = tr.idle_w()
    active = np.nonzero(p > idle + max(IDLE_BAND_W, 0.15 * idle))[0]
    if active.size == 0:
        return float(t[0]), float(t[-1])
    i0 = int(active[0])
    a = float(t[max(i0 - 1, 0)]) if i0 > 0 else float(t[0])
    b = float(t[int(active[-1])])
    for s0, s1 in _idle_stretches(tr, idle + IDLE_BAND_W, IDLE_MIN_S):
        if s0 <= a or s1 >= b:
            continue
        if (b - s1) >= RESTART_SHARE * (b - a):
            a = s1
    return a, b


@dataclass(frozen=True)
class Interruption:
    """A stretch of the job with the heaters off: a pause or a reset, then resumed."""

    t0_s: float  # trace time
    t1_s: float
    steppers: bool  # board + steppers level (True) or board only (False)

    @property
    def dur_s(self) -> float:
        return self.t1_s - self.t0_s


def interruptions(
    tr: PowerTrace, window: tuple[float, float], base_w: float, heaters: bool
) -> list[Interruption]:
    """Heater-off stretches inside ``window``: board-only (idle) for ``IDLE_MIN_S``, or (for
    a run with a heater on) no reading above the board + ``base_w`` level for
    ``HEATERS_OFF_MIN_S``, or a reset after a gap in the log; one event seen as two
    stretches (a reset, then minutes idle) is one interruption."""
    a, b = window
    idle = tr.idle_w()
    out = [
        Interruption(s0, s1, False)
        for s0, s1 in _idle_stretches(tr, idle + IDLE_BAND_W, IDLE_MIN_S)
        if s0 >= a and s1 <= b
    ]
    if heaters:
        for s0, s1 in _idle_stretches(tr, idle + base_w, HEATERS_OFF_MIN_S):
            if s0 >= a and s1 <= b:
                out += [Interruption(x0, x1, True) for x0, x1 in _uncounted(s0, s1, out)]
        out += _resets(tr, window, idle + base_w, out)
    return _merged(out)


def _uncounted(s0: float, s1: float, known: list[Interruption]) -> list[tuple[float, float]]:
    """The parts of (s0, s1), each at least ``HEATERS_OFF_MIN_S``, outside ``known``."""
    parts = [(s0, s1)]
    for i in known:
        nxt = []
        for x0, x1 in parts:
            if i.t1_s <= x0 or i.t0_s >= x1:
                nxt.append((x0, x1))
                continue
            if i.t0_s - x0 >= HEATERS_OFF_MIN_S:
                nxt.append((x0, i.t0_s))
            if x1 - i.t1_s >= HEATERS_OFF_MIN_S:
                nxt.append((i.t1_s, x1))
        parts = nxt
    return parts


def _resets(
    tr: PowerTrace, window: tuple[float, float], level_w: float, known: list[Interruption]
) -> list[Interruption]:
    """A reset: the meter log breaks off and comes back at or below ``level_w`` (board and
    steppers) while the heaters should be on (the board rebooted); it lasts until the
    heaters return. Resets inside ``known`` stretches are not counted again."""
    a, b = window
    t, p = tr.t_s, tr.power_w
    idle = tr.idle_w()
    out: list[Interruption] = []
    for i in np.nonzero(tr.gap_mask())[0]:
        if not (a <= t[i] and t[i + 1] < b) or p[i + 1] > level_w:
            continue
        if any(x.t0_s <= t[i + 1] <= x.t1_s for x in known + out):
            continue
        j = i + 1
        while j < t.size and p[j] <= level_w:
            j += 1
        if j < t.size:
            lvl = float(np.median(p[i + 1 : j]))
            out.append(Interruption(float(t[i]), float(t[j]), lvl > idle + IDLE_BAND_W))
    return out


def _merged(found: list[Interruption]) -> list[Interruption]:
    """``found`` in time order, those closer than ``MERGE_S`` joined (the longer one says
    whether the steppers were held)."""
    merged: list[Interruption] = []
    for x in sorted(found, key=lambda i: i.t0_s):
        if merged and x.t0_s - merged[-1].t1_s < MERGE_S:
            y = merged[-1]
            st = y.steppers if y.dur_s >= x.dur_s else x.steppers
            merged[-1] = Interruption(y.t0_s, max(y.t1_s, x.t1_s), st)
        else:
            merged.append(x)
    return merged


def bed_power_w(tr: PowerTrace, threshold_w: float, local_s: float = 60.0) -> np.ndarray:
    """The bed's share of each reading of a bang-bang bed: readings above ``threshold_w``
    are "bed on" and the bed's share is the reading minus the median bed-off reading within
    ``local_s`` (hotend and base at that time); 0 for the others."""
    t, p = tr.t_s, tr.power_w
    on = p > threshold_w
    out = np.zeros_like(p)
    off_t, off_p = t[~on], p[~on]
    if off_t.size == 0:
        return out
    for i in np.nonzero(on)[0]:
        lo, hi = np.searchsorted(off_t, [t[i] - local_s, t[i] + local_s])
        ref = float(np.median(off_p[lo:hi])) if hi > lo else float(np.median(off_p))
        out[i] = max(p[i] - ref, 0.0)
    return out
