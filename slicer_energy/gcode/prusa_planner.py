"""Emulation of PrusaSlicer 2.5's print-time estimator (GCodeProcessor's TimeMachine).

This is the reference for like-with-like comparison with the ``; estimated
printing time (normal mode)`` line, quirks included (time-estimators.md §1):
per-axis acceleration clamp to the axis limit, safe speed = the jerk value itself,
junction from the *commanded* previous feedrate, 64/256 block batching, forward
pass before reverse pass, last block exiting at its safe speed, and 0 s for
G4/M400/M109/M190 waits and for G2/G3 arcs. Pure and sequential: one Python
loop per block. This is the readable reference; with ``jit=True`` the same machine
runs as the numba kernel ``_kernels.prusa_feed`` (its queue in arrays, limits as
snapshot rows), which gives bit-identical per-move times (tests/gcode/test_gcode_jit.py).
"""

from __future__ import annotations

import math

import numpy as np

from ..machine import Kinematics
from ..motion import prusa_block_time, prusa_junction_vmax, prusa_trapezoid
from ._jit import kernel
from .limits import LIMIT_CMDS, apply_prusa, limits_from_kinematics
from .words import FLAG_ARC, FLAG_WIPE, Event, Moves

QUEUE_SIZE = 64  # GPh:319-327
REFRESH_THRESHOLD = 4 * QUEUE_SIZE
_FLUSH_CMDS = frozenset({"M1", ";COLOR_CHANGE", ";PAUSE_PRINT"})
_LIMITS, _SYNC = 0, 1  # what an event does to the machine


class _Block:
    __slots__ = (
        "row",
        "acc",
        "dist",
        "cruise",
        "entry",
        "max_entry",
        "exit_safe",
        "nominal",
        "recalc",
        "acc_until",
        "dec_after",
        "tr_cruise",
    )

    def trapezoid(self, exit_v: float) -> None:
        self.acc_until, self.dec_after, self.tr_cruise = prusa_trapezoid(
            self.acc, self.dist, self.entry, self.cruise, exit_v
        )

    def time(self) -> float:
        return prusa_block_time(
            self.acc, self.dist, self.entry, self.acc_until, self.dec_after, self.tr_cruise
        )


class PrusaTimeMachine:
    """Normal-mode TimeMachine. Feed it moves and events in order; read ``durations``."""

    def __init__(self, kin: Kinematics, flavor_mm_s: bool = True, jit: bool = False) -> None:
        self.lim = limits_from_kinematics(kin, prusa=True)
        self.flavor_mm_s = flavor_mm_s
        self.blocks: list[_Block] = []
        self.time_s = 0.0
        self.commits: list[tuple[int, float]] = []  # (row, seconds)
        # prev state (GP TimeMachine::State)
        self.p_feed = 0.0
        self.p_axis = [0.0, 0.0, 0.0, 0.0]
        self.p_safe = 0.0
        self.last = None  # last position (x, y, z) used for deltas
        self.extruder = 0
        # compiled path (_jit.prusa_feed): the same machine with its queue in arrays
        self.jit = jit
        self._q = np.zeros((REFRESH_THRESHOLD + 2, 9))
        self._qi = np.zeros((REFRESH_THRESHOLD + 2, 3), np.int64)
        self._nq = np.zeros(1, np.int64)
        self._state = np.zeros(10)
        self._commit_arrays: list[tuple[np.ndarray, np.ndarray]] = []

    # -- events -------------------------------------------------------------
    def event(self, ev: Event) -> None:
        if self._apply_event(ev) == _SYNC:
            self.synchronize()

    def _apply_event(self, ev: Event) -> int | None:
        """Apply ``ev`` to the limits / tool; say whether it changed the limits or
        needs the queue emptied."""
        c = ev.cmd
        if c in LIMIT_CMDS:
            apply_prusa(self.lim, ev, self.flavor_mm_s)
            return _LIMITS
        if c == "G92":
            return _SYNC if "E" not in ev.params else None
        if c in _FLUSH_CMDS or (c == "M702" and "C" in ev.params):
            return _SYNC
        if c[0] == "T" and c[1:].isdigit() and int(c[1:]) != self.extruder:
            self.extruder = int(c[1:])
            return _SYNC
        return None

    def synchronize(self, extra_s: float = 0.0) -> None:
        if self.jit:
            self._feed_jit(None, 0, [], sync=True)
        else:
            self._calculate_time(0)

    # -- moves --------------------------------------------------------------
    def moves(self, mv: Moves, start: int, events: list[Event]) -> None:
        """Process one chunk: moves interleaved with ``events`` (global indexes)."""
        if self.jit:
            self._feed_jit(mv, start, events)
            return
        ei = 0
        n = len(mv)
        evs = sorted(events, key=lambda e: e.index)
        xs, ys, zs = mv.x.tolist(), mv.y.tolist(), mv.z.tolist()
        des, fs, flags = mv.de.tolist(), mv.f.tolist(), mv.flags.tolist()
        for i in range(n):
            while ei < len(evs) and evs[ei].index <= start + i:
                self.event(evs[ei])
                ei += 1
            if flags[i] & FLAG_ARC:
                continue  # PrusaSlicer 2.5: no arcs, position not updated
            pos = (xs[i], ys[i], zs[i])
            if self.last is None:
                self.last = (0.0, 0.0, 0.0)
            self._g1(start + i, pos, des[i], fs[i], bool(flags[i] & FLAG_WIPE))
        while ei < len(evs):
            self.event(evs[ei])
            ei += 1

    def _g1(  # noqa: C901, PLR0912, PLR0915 - port of PrusaSlicer's G1 handler, kept line for line
        self, row: int, pos: tuple[float, float, float], de: float, f: float, wipe: bool
    ) -> None:
        lx, ly, lz = self.last
        d = (pos[0] - lx, pos[1] - ly, pos[2] - lz, de)
        self.last = pos
        if d[0] == 0.0 and d[1] == 0.0 and d[2] == 0.0 and de == 0.0:
            return
        lim = self.lim
        # move type (GP process_G1 move_type)
        xyz = d[0] != 0.0 or d[1] != 0.0 or d[2] != 0.0
        if wipe:
            mtype = "wipe"
        elif de < 0.0:
            mtype = "travel" if xyz else "retract"
        elif de > 0.0:
            if d[0] == 0.0 and d[1] == 0.0:
                mtype = "travel" if d[2] != 0.0 else "unretract"
            else:
                mtype = "extrude"
        else:
            mtype = "travel"
        if mtype == "extrude" and pos[2] == 0.0:
            mtype = "travel"
        sq = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        dist = math.sqrt(sq) if sq > 0.0 else abs(de)
        inv = 1.0 / dist
        feed = max(f, lim.min_travel) if de == 0.0 else max(f, lim.min_ext)
        axis = [feed * d[a] * inv for a in range(4)]
        axis[3] *= lim.e_factor
        factor = 1.0
        for a in range(4):
            va = abs(axis[a])
            if va != 0.0 and lim.max_f[a] != 0.0:
                factor = min(factor, lim.max_f[a] / va)
        cruise = factor * feed
        if factor < 1.0:
            axis = [v * factor for v in axis]
        if mtype == "travel":
            acc = lim.acc_travel
        elif not xyz:
            acc = lim.acc_retract
        else:
            acc = lim.acc_print
        for a in range(4):
            if acc * abs(d[a]) * inv > lim.max_a[a]:
                acc = lim.max_a[a]  # quirk: the axis limit, not scaled to the path
        safe = cruise
        for a in range(4):
            if abs(axis[a]) > lim.jerk[a]:
                safe = min(safe, lim.jerk[a])  # quirk: the jerk value itself
        vmax = safe
        if self.blocks and self.p_feed > 1e-4:
            vmax = prusa_junction_vmax(
                cruise, safe, self.p_feed, self.p_safe, self.p_axis, axis, lim.jerk
            )
        v_allow = math.sqrt(safe * safe + 2.0 * acc * dist)
        b = _Block()
        b.row, b.acc, b.dist, b.cruise = row, acc, dist, cruise
        b.entry = min(vmax, v_allow)
        b.max_entry = vmax
        b.nominal = cruise <= v_allow
        b.recalc = True
        b.exit_safe = safe
        b.trapezoid(safe)
        self.p_feed, self.p_axis, self.p_safe = feed, axis, safe
        self.blocks.append(b)
        if len(self.blocks) > REFRESH_THRESHOLD:
            self._calculate_time(QUEUE_SIZE)

    def _calculate_time(self, keep: int) -> None:
        blocks = self.blocks
        n = len(blocks)
        if n < 2:
            return  # GP:283-284: nothing happens, the block stays queued
        for i in range(n - 1):  # forward pass
            prev, curr = blocks[i], blocks[i + 1]
            if not prev.nominal and prev.entry < curr.entry:
                pe = prev.entry
                v = min(curr.entry, math.sqrt(max(0.0, pe * pe + 2 * prev.acc * prev.dist)))
                if curr.entry != v:
                    curr.entry = v
                    curr.recalc = True
        for i in range(n - 1, 0, -1):  # reverse pass (last, so it wins)
            curr, nxt = blocks[i - 1], blocks[i]
            if curr.entry != curr.max_entry:
                if not curr.nominal and curr.max_entry > nxt.entry:
                    ne = nxt.entry
                    curr.entry = min(
                        curr.max_entry, math.sqrt(max(0.0, ne * ne + 2 * curr.acc * curr.dist))
                    )
                else:
                    curr.entry = curr.max_entry
                curr.recalc = True
        for i in range(1, n):  # recalculate_trapezoids
            curr, nxt = blocks[i - 1], blocks[i]
            if curr.recalc or nxt.recalc:
                curr.trapezoid(nxt.entry)
                curr.recalc = False
        last = blocks[-1]
        last.trapezoid(last.exit_safe)
        last.recalc = False
        n_commit = n - keep
        for b in blocks[:n_commit]:
            t = b.time()
            self.time_s += t
            self.commits.append((b.row, t))
        del blocks[:n_commit]

    def _limits_row(self) -> list[float]:
        lim = self.lim  # column order: _kernels._L_*
        return [
            *lim.max_f,
            *lim.max_a,
            *lim.jerk,
            lim.acc_print,
            lim.acc_retract,
            lim.acc_travel,
            lim.min_ext,
            lim.min_travel,
            lim.e_factor,
        ]

    def _feed_jit(self, mv: Moves | None, start: int, events: list[Event], sync=False) -> None:
        snaps = [self._limits_row()]
        idx, kind, snap = [], [], []
        for ev in sorted(events, key=lambda e: e.index):
            act = self._apply_event(ev)
            if act is None:
                continue
            idx.append(ev.index)
            kind.append(act)
            if act == _LIMITS:
                snaps.append(self._limits_row())
            snap.append(len(snaps) - 1)
        if sync:
            idx.append(start)
            kind.append(_SYNC)
            snap.append(0)
        mv = mv if mv is not None else Moves.empty()
        rows, ts = kernel("prusa_feed")(
            mv.x,
            mv.y,
            mv.z,
            mv.de,
            mv.f,
            mv.flags,
            start,
            np.asarray(idx, np.int64),
            np.asarray(kind, np.int64),
            np.asarray(snap, np.int64),
            np.asarray(snaps, np.float64),
            self._q,
            self._qi,
            self._nq,
            self._state,
        )
        self.time_s = float(self._state[9])
        self._commit_arrays.append((rows, ts))

    def pending_row(self) -> int | None:
        if self.jit:
            return int(self._qi[0, 0]) if self._nq[0] > 0 else None
        return self.blocks[0].row if self.blocks else None

    def finish(self) -> None:
        self.synchronize()

    def pop_commits(self) -> tuple[np.ndarray, np.ndarray]:
        if self.jit:
            parts, self._commit_arrays = self._commit_arrays, []
            if not parts:
                return np.zeros(0, np.int64), np.zeros(0)
            return np.concatenate([r for r, _ in parts]), np.concatenate([t for _, t in parts])
        rows = np.fromiter((r for r, _ in self.commits), np.int64, len(self.commits))
        ts = np.fromiter((t for _, t in self.commits), np.float64, len(self.commits))
        self.commits = []
        return rows, ts
