"""Firmware motion planners (Marlin 2 classic jerk / junction deviation, Klipper), vectorised.

Per-block set-up (nominal speed, acceleration, safe and junction speeds) is array
arithmetic over a chunk of moves. The look-ahead passes are min-plus recurrences
on squared speeds, ``v²[i] = min(M[i], v²[i±1] + 2·a·d)``, which NumPy solves
without a Python loop: with prefix sums ``S`` of ``2·a·d`` the forward pass is
``S + cummin(R − S)``. Marlin's finite block buffer (BLOCK_BUFFER_SIZE) becomes a
sliding-window minimum: when block *i* starts, only the next ``B−2`` blocks are
known and the newest one must be able to stop (time-estimators.md §2).
Klipper plans over the whole stretch between stops (its look-ahead flushes only
final moves, TH:131-191), with junction deviation from square_corner_velocity,
the centripetal limit, and cruise speeds capped by the smoothed
accel-to-decel (minimum_cruise_ratio) pass.

Stops (the firmware waits until the queue is empty): G4, M400, M109, M190,
TEMPERATURE_WAIT, G28, G29/G80/BED_MESH_CALIBRATE, M0/M1, M600.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np

from ..machine import Kinematics
from ..motion import trapezoid_time
from ._jit import kernel
from .limits import LIMIT_CMDS, Limits, apply_klipper, apply_marlin, limits_from_kinematics
from .words import FLAG_HOME, MACRO_CALLS, Event, Moves

STOP_CMDS = (
    frozenset(
        {
            "G4",
            "M400",
            "M109",
            "M190",
            "TEMPERATURE_WAIT",
            "G28",
            "G29",
            "G80",
            "BED_MESH_CALIBRATE",
            "M0",
            "M1",
            "M600",
            ";PAUSE_PRINT",
        }
    )
    | MACRO_CALLS
)  # a start/end macro heats, waits and homes: the queue drains


def _forward_scan(bound_2, k):
    """E[m] = min(bound[m], E[m-1] + k[m-1]) for all m (E[0] = bound[0])."""
    s = np.concatenate(([0.0], np.cumsum(k[:-1])))
    return s + np.minimum.accumulate(bound_2 - s)


def _reverse_exact(bound_2, k, end_2):
    # E[m] = min(bound[m], E[m+1] + k[m]) with E[n] = end_2.
    # Let U[m] = sum_{l<m} k[l] (prefix). Then E[m] = min_{j>=m} (bound[j] + U[j] - U[m])
    # where the virtual j=n term is end_2 + U[n] - U[m].
    u = np.concatenate(([0.0], np.cumsum(k)))
    vals = np.concatenate((bound_2 + u[:-1], [end_2 + u[-1]]))
    suffix = np.minimum.accumulate(vals[::-1])[::-1]
    return suffix[:-1] - u[:-1]


def _window_min(vals, w):
    """out[m] = min(vals[m : m + w]) (vals padded by the caller)."""
    out = vals[: len(vals) - w + 1].copy()
    for s in range(1, w):
        np.minimum(out, vals[s : s + len(out)], out=out)
    return out


@dataclass
class _Blocks:
    row: np.ndarray
    d: np.ndarray
    a: np.ndarray
    vnom2: np.ndarray
    max2: np.ndarray  # max junction (entry) speed²
    seg_start: np.ndarray  # bool: a stop happened before this block
    cap2: np.ndarray = field(default=None)  # Klipper smoothed cruise cap (optional)

    def __len__(self) -> int:
        return len(self.row)

    @staticmethod
    def concat(a: _Blocks, b: _Blocks) -> _Blocks:
        return _Blocks(
            *(
                np.concatenate([getattr(a, n), getattr(b, n)])
                for n in ("row", "d", "a", "vnom2", "max2", "seg_start", "cap2")
            )
        )

    def take(self, sl) -> _Blocks:
        return _Blocks(
            *(getattr(self, n)[sl] for n in ("row", "d", "a", "vnom2", "max2", "seg_start", "cap2"))
        )


_SCALARS = [f for f in Limits.__dataclass_fields__ if f not in ("max_f", "max_a", "jerk")]


_GET_SCALARS = operator.attrgetter(*_SCALARS)


def _snap(lim: Limits) -> tuple:
    """One flat row of the limits (cheap to take at every M204)."""
    return (*lim.max_f, *lim.max_a, *lim.jerk, *_GET_SCALARS(lim))


def _rowmin(m: np.ndarray) -> np.ndarray:
    """Minimum over the columns of an (n, 4) array: ``m.min(axis=1)``, without the slow
    strided reduction (the minimum is exact, so the order does not matter)."""
    return np.minimum(np.minimum(m[:, 0], m[:, 1]), np.minimum(m[:, 2], m[:, 3]))


def _columns(snaps: list[tuple]) -> dict[str, np.ndarray]:
    """Limit snapshots as columns (one row per snapshot) for gathering per block."""
    t = np.array(snaps, np.float64)
    cols = {"max_f": t[:, 0:4], "max_a": t[:, 4:8], "jerk": t[:, 8:12]}
    cols.update({f: t[:, 12 + i] for i, f in enumerate(_SCALARS)})
    return cols


class FirmwarePlanner:
    """Streaming planner. ``feed`` returns (rows, seconds) of moves whose timing is final."""

    def __init__(self, kin: Kinematics, firmware: str = "marlin", jit: bool = False) -> None:
        if firmware not in ("marlin", "klipper"):
            raise ValueError(f"unknown firmware {firmware!r}")
        self.jit = jit  # compiled per-block loops (_jit.py); same results
        self.fw = firmware
        self.kin = kin
        self.lim: Limits = limits_from_kinematics(kin)
        self.mps2 = kin.min_planner_speed_mm_s**2 if firmware == "marlin" else 0.0
        self.window = max(2, kin.block_buffer_size - 2) if firmware == "marlin" else 0
        self.last = np.zeros(3)
        self.prev_u = np.zeros(4)  # previous block's unit vector (xyz + e) / axis speeds
        self.prev_v = np.zeros(4)
        self.prev_nom = 0.0
        self.prev_safe = 0.0
        self.prev_de_ratio = 0.0
        self.prev_a = 0.0
        self.prev_d = 0.0
        self.have_prev = False
        self.pending_stop = True  # the first block starts from rest
        self.carry: _Blocks | None = None
        self.carry_entry2: float | None = None

    # ------------------------------------------------------------------ setup
    def _settings_arrays(self, n: int, start: int, events: list[Event]):
        """Per-move limit snapshots and stop flags from the chunk's events."""
        apply = apply_marlin if self.fw == "marlin" else apply_klipper
        snaps = [_snap(self.lim)]
        idx = [0]
        stop_before = np.zeros(n + 1, bool)
        for ev in events:
            j = ev.index - start
            if ev.cmd in LIMIT_CMDS:
                apply(self.lim, ev)
                if idx[-1] == j:
                    snaps[-1] = _snap(self.lim)
                else:
                    snaps.append(_snap(self.lim))
                    idx.append(j)
            elif ev.cmd in STOP_CMDS:
                stop_before[min(max(j, 0), n)] = True
        sel = np.searchsorted(np.asarray(idx[1:], np.int64), np.arange(n), side="right")
        return snaps, sel, stop_before

    def feed(self, mv: Moves, start: int, events: list[Event]):
        n = len(mv)
        snaps, sel, stop_before = self._settings_arrays(n, start, events)
        if n == 0:
            if stop_before[0]:
                self.pending_stop = True
            return self._plan(None, final=stop_before[0])
        pos = np.stack([mv.x, mv.y, mv.z], axis=1)
        prev = np.vstack([self.last[None, :], pos[:-1]])
        dxyz = pos - prev
        self.last = pos[-1].copy()
        de = mv.de
        home = (mv.flags & FLAG_HOME) != 0
        stop_before[:n] |= home  # homing stops; the home row itself takes no motion time
        stop_before[1:n] |= home[:-1]
        dist_xyz = np.sqrt(np.einsum("ij,ij->i", dxyz, dxyz))
        e_only = (dist_xyz == 0) & (de != 0)
        dist = np.where(e_only, np.abs(de), dist_xyz)
        keep = (dist > 1e-9) & ~home
        # a stop before a dropped row carries over to the next kept block
        seg = np.cumsum(stop_before[:n].astype(np.int64))
        rows = np.flatnonzero(keep)
        nb = len(rows)
        if nb == 0:
            if stop_before.any():
                self.pending_stop = True
            return self._plan(None, final=bool(stop_before.any()))
        seg_k = seg[rows]
        seg_start = np.concatenate(([self.pending_stop or seg_k[0] > 0], seg_k[1:] != seg_k[:-1]))
        self.pending_stop = bool(seg[-1] > seg_k[-1] or stop_before[n])

        d = dist[rows]
        dv = np.concatenate([dxyz[rows], de[rows, None]], axis=1)  # (nb, 4)
        sl = sel[rows]
        # per-block limits gathered from the snapshot table
        tab = _columns(snaps)
        max_f = tab["max_f"][sl]
        max_a = tab["max_a"][sl]
        jerk = tab["jerk"][sl]
        efac = tab["e_factor"][sl]
        sfac = tab["speed_factor"][sl]
        dv[:, 3] *= efac
        f = mv.f[rows] * sfac
        moving_e = de[rows] != 0
        if self.fw == "marlin":
            min_ext = tab["min_ext"][sl]
            min_tr = tab["min_travel"][sl]
            f = np.where(moving_e, np.maximum(f, min_ext), np.maximum(f, min_tr))
            blocks = self._marlin_blocks(
                rows + start,
                d,
                dv,
                f,
                max_f,
                max_a,
                jerk,
                sl,
                tab,
                e_only[rows],
                moving_e,
                seg_start,
            )
        else:
            blocks = self._klipper_blocks(rows + start, d, dv, f, sl, tab, e_only[rows], seg_start)
        return self._plan(blocks, final=False)

    def _marlin_blocks(
        self, rows, d, dv, f, max_f, max_a, jerk, sl, tab, e_only, moving_e, seg_start
    ) -> _Blocks:
        absd = np.abs(dv)
        inv = 1.0 / d
        v_axis = f[:, None] * dv * inv[:, None]
        with np.errstate(divide="ignore"):
            ratio = np.where(v_axis != 0, max_f / np.abs(v_axis), np.inf)
        factor = np.minimum(1.0, _rowmin(ratio))
        vnom = f * factor
        v_axis *= factor[:, None]
        acc_p = tab["acc_print"][sl]
        acc_r = tab["acc_retract"][sl]
        acc_t = tab["acc_travel"][sl]
        acc = np.where(e_only, acc_r, np.where(moving_e, acc_p, acc_t))
        with np.errstate(divide="ignore"):
            lim = np.where(absd > 0, max_a * d[:, None] / absd, np.inf)
        acc = np.minimum(acc, _rowmin(lim))
        jd = self.kin.junction_deviation_mm
        if jd > 0:
            max2 = self._marlin_jd(dv, d, acc, max_a, vnom, seg_start, jd)
        else:
            max2 = self._marlin_jerk(v_axis, vnom, jerk, seg_start)
        return _Blocks(rows, d, acc, vnom**2, max2, seg_start, np.full(len(d), np.inf))

    def _marlin_jerk(self, v_axis, vnom, jerk, seg_start):
        """Classic jerk junction speeds (MP:2816-2911)."""
        if self.jit:
            prev = np.ascontiguousarray(self.prev_v, np.float64)
            max2, safe = kernel("marlin_jerk")(
                np.ascontiguousarray(v_axis),
                vnom,
                np.ascontiguousarray(jerk),
                seg_start,
                prev,
                float(self.prev_nom),
                float(self.prev_safe),
            )
            self.prev_v, self.prev_nom, self.prev_safe = v_axis[-1].copy(), vnom[-1], safe[-1]
            return max2
        absv = np.abs(v_axis)
        with np.errstate(divide="ignore"):
            r = np.where(absv > jerk, jerk / np.where(absv > 0, absv, 1.0), 1.0)
        safe = vnom * _rowmin(r)
        prev_v = np.vstack([self.prev_v[None, :], v_axis[:-1]])
        prev_nom = np.concatenate(([self.prev_nom], vnom[:-1]))
        prev_safe = np.concatenate(([self.prev_safe], safe[:-1]))
        larger = prev_nom > vnom
        with np.errstate(divide="ignore", invalid="ignore"):
            ssf = np.where(larger, vnom / prev_nom, 1.0)
        vmax = np.minimum(prev_nom, vnom)
        v_factor = np.ones_like(vnom)
        for a in range(4):
            v_exit = prev_v[:, a] * ssf * v_factor
            v_entry = v_axis[:, a] * v_factor
            coast_hi = (v_entry > 0) | (v_exit < 0)
            coast_lo = (v_entry < 0) | (v_exit > 0)
            j = np.where(
                v_exit > v_entry,
                np.where(coast_hi, v_exit - v_entry, np.maximum(v_exit, -v_entry)),
                np.where(coast_lo, v_entry - v_exit, np.maximum(-v_exit, v_entry)),
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                v_factor = np.where(j > jerk[:, a], v_factor * jerk[:, a] / j, v_factor)
        vmax = vmax * v_factor
        thr = vmax * 0.99
        vmax = np.where((prev_safe > thr) & (safe > thr), safe, vmax)
        no_junction = seg_start | (prev_nom <= 1e-4)
        vmax = np.where(no_junction, safe, vmax)
        self.prev_v, self.prev_nom, self.prev_safe = v_axis[-1].copy(), vnom[-1], safe[-1]
        return vmax**2

    def _marlin_jd(self, dv, d, acc, max_a, vnom, seg_start, jd):
        """Junction deviation (MP:2672-2812), unit vectors include E when it moves."""
        u = dv / d[:, None]
        prev_u = np.vstack([self.prev_u[None, :], u[:-1]])
        prev_nom = np.concatenate(([self.prev_nom], vnom[:-1]))
        cos_t = -np.einsum("ij,ij->i", u, prev_u)
        cos_t = np.clip(cos_t, -1.0, 1.0)
        s = np.sqrt(np.maximum(0.0, (1 - cos_t) * 0.5))
        jun = u - prev_u
        nrm = np.linalg.norm(jun, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ja = np.where(np.abs(jun) > 0, max_a / (np.abs(jun) / nrm[:, None]), np.inf)
        a_j = np.minimum(acc, _rowmin(ja))
        with np.errstate(divide="ignore", invalid="ignore"):
            v2 = np.where(s < 0.999999, a_j * jd * s / (1 - s), np.inf)
        theta = np.arccos(-cos_t)
        small = (d < 1.0) & (cos_t < -0.7071)
        with np.errstate(divide="ignore", invalid="ignore"):
            v2 = np.where(small, np.minimum(v2, d * a_j / np.maximum(theta, 1e-9)), v2)
        v2 = np.minimum(v2, np.minimum(vnom**2, prev_nom**2))
        v2 = np.where(cos_t > 0.999999, self.mps2, v2)  # straight back: stop
        v2 = np.where(seg_start, self.mps2, v2)
        self.prev_u, self.prev_nom = u[-1].copy(), vnom[-1]
        return v2

    def _klipper_blocks(self, rows, d, dv, f, sl, tab, e_only, seg_start) -> _Blocks:  # noqa: PLR0915 - vectorised port of Klipper's planner, kept line for line
        k = self.kin
        vel = tab["k_velocity"][sl]
        acc = tab["k_accel"][sl]
        mcr = tab["k_min_cruise_ratio"][sl]
        scv = tab["k_scv"][sl]
        v = np.minimum(f, vel)
        dz = np.abs(dv[:, 2])
        with np.errstate(divide="ignore", invalid="ignore"):
            zr = np.where(dz > 0, d / dz, np.inf)
        v = np.minimum(v, k.klipper_max_z_velocity_mm_s * zr)
        acc = np.minimum(acc, k.klipper_max_z_accel_mm_s2 * zr)
        de = np.abs(dv[:, 3])
        xy = np.hypot(dv[:, 0], dv[:, 1])
        extrude_only = (xy == 0) & (de > 0) | (dv[:, 3] < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            er = np.where(de > 0, d / de, np.inf)
        v = np.where(extrude_only, np.minimum(v, k.klipper_max_extrude_only_velocity_mm_s * er), v)
        acc = np.where(
            extrude_only, np.minimum(acc, k.klipper_max_extrude_only_accel_mm_s2 * er), acc
        )
        # E-only moves are non-kinematic: limited by the extruder only (EX:204-230)
        acc = np.where(e_only, k.klipper_max_extrude_only_accel_mm_s2, acc)
        v = np.where(e_only, np.minimum(f, k.klipper_max_extrude_only_velocity_mm_s), v)
        u = np.zeros((len(d), 3))
        kin_d = np.where(e_only, 0.0, d)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(kin_d[:, None] > 0, dv[:, :3] / d[:, None], 0.0)
        prev_u = np.vstack([self.prev_u[None, :3], u[:-1]])
        prev_v2 = np.concatenate(([self.prev_nom**2], v[:-1] ** 2))
        prev_a = np.concatenate(([self.prev_a], acc[:-1]))
        prev_d = np.concatenate(([self.prev_d], d[:-1]))
        jd = scv**2 * (np.sqrt(2.0) - 1.0) / acc
        prev_jd = np.concatenate(([jd[0] if not self.have_prev else self.prev_jd], jd[:-1]))
        cos_t = np.clip(-np.einsum("ij,ij->i", u, prev_u), -0.999999, 0.999999)
        s2 = np.sqrt(0.5 * (1.0 - cos_t))
        c2 = np.sqrt(0.5 * (1.0 + cos_t))
        r = s2 / (1.0 - s2)
        max2 = np.minimum(v**2, prev_v2)
        max2 = np.minimum(max2, np.minimum(r * jd * acc, r * prev_jd * prev_a))
        cent = s2 / (4.0 * np.maximum(c2, 1e-9))
        max2 = np.minimum(max2, np.minimum(2 * acc * d * cent, 2 * prev_a * prev_d * cent))
        # extruder corner velocity (EX:231-235)
        de_r = np.where(d > 0, dv[:, 3] / d, 0.0)
        prev_der = np.concatenate(([self.prev_de_ratio], de_r[:-1]))
        diff = np.abs(de_r - prev_der)
        with np.errstate(divide="ignore"):
            ev2 = np.where(
                diff > 0, (k.klipper_instantaneous_corner_velocity_mm_s / diff) ** 2, np.inf
            )
        max2 = np.minimum(max2, ev2)
        no_junction = (
            seg_start | (prev_v2 <= 0) | ~(np.any(u != 0, axis=1) & np.any(prev_u != 0, axis=1))
        )
        # Move.calc_junction returns early unless both moves are kinematic: the junction
        # with an extrude-only move (retract, unretract) keeps max_start_v2 = 0 (TH:65-70)
        max2 = np.where(no_junction, 0.0, max2)
        atd = acc * (1.0 - mcr)
        self.prev_u = np.concatenate((u[-1], [0.0]))
        self.prev_nom, self.prev_a, self.prev_d = v[-1], acc[-1], d[-1]
        self.prev_jd, self.prev_de_ratio, self.have_prev = jd[-1], de_r[-1], True
        blk = _Blocks(rows, d, acc, v**2, max2, seg_start, atd)
        return blk

    # --------------------------------------------------------------- planning
    def _plan(self, blocks: _Blocks | None, final: bool):
        if self.carry is not None and blocks is not None:
            blocks = _Blocks.concat(self.carry, blocks)
        elif blocks is None:
            blocks = self.carry
        self.carry = None
        if blocks is None or len(blocks) == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        starts = np.flatnonzero(blocks.seg_start)
        if len(starts) == 0 or starts[0] != 0:
            starts = np.concatenate(([0], starts))
        bounds = list(starts) + [len(blocks)]
        out_rows, out_t = [], []
        for si in range(len(bounds) - 1):
            s, e = bounds[si], bounds[si + 1]
            last_open = (si == len(bounds) - 2) and not final and not self.pending_stop
            first_known = self.carry_entry2 if (si == 0 and not blocks.seg_start[0]) else None
            r, t, n_done, entry_next = self._plan_segment(
                blocks.take(slice(s, e)), last_open, first_known
            )
            out_rows.append(r)
            out_t.append(t)
            if si == 0:
                self.carry_entry2 = None
            if last_open and n_done < e - s:
                self.carry = blocks.take(slice(s + n_done, e))
                self.carry.seg_start = self.carry.seg_start.copy()
                self.carry.seg_start[0] = False
                self.carry_entry2 = entry_next
        return np.concatenate(out_rows), np.concatenate(out_t)

    def _plan_segment(self, b: _Blocks, open_end: bool, first_entry2: float | None):
        n = len(b)
        k = 2.0 * b.a * b.d
        u = np.concatenate(([0.0], np.cumsum(k)))
        end2 = self.mps2
        if self.fw == "marlin":
            w = self.window
            p = b.max2 + u[:-1]
            pad_val = end2 + u[-1]
            vals = np.concatenate((p, np.full(w, pad_val)))
            win = _window_min(vals, w)[:n]  # min over j in [m, m+w)
            idx_end = np.minimum(np.arange(n) + w, n)
            end_term = end2 + u[idx_end]
            bound = np.minimum(win, end_term) - u[:-1]
        else:
            bound = _reverse_exact(b.max2, k, end2)
        if first_entry2 is not None:
            bound[0] = first_entry2
        else:
            bound[0] = min(bound[0], b.max2[0])
        entry2 = _forward_scan(bound, k)
        if open_end:
            # block m is final once its exit bound saw a full window (or never, for Klipper)
            if self.fw == "marlin":
                n_done = max(0, n - self.window - 1)
            else:
                n_done = max(0, n - 64)  # Klipper: keep a tail until a stop arrives
        else:
            n_done = n
        exit2 = np.concatenate((entry2[1:], [end2]))
        vc2 = b.vnom2
        if self.fw == "klipper":
            # smoothed accel_to_decel caps the cruise speed of short moves (TH:131-181)
            atd = b.cap2
            ka = 2.0 * atd * b.d
            sm_f = _forward_scan(np.minimum(b.max2, bound), ka)
            sm_r = _reverse_exact(b.max2, ka, 0.0)
            sm = np.minimum(sm_f, sm_r)
            sm_next = np.concatenate((sm[1:], [0.0]))
            vc2 = np.minimum(vc2, 0.5 * (sm + sm_next) + atd * b.d)
            vc2 = np.maximum(vc2, np.maximum(entry2, exit2))
        with np.errstate(divide="ignore", invalid="ignore"):  # parts of length 0
            t = trapezoid_time(
                b.d[:n_done], b.a[:n_done], entry2[:n_done], exit2[:n_done], vc2[:n_done]
            )
        entry_next = float(entry2[n_done]) if n_done < n else None
        return b.row[:n_done], t, n_done, entry_next

    def pending_row(self) -> int | None:
        """Smallest global row whose time is not final yet (None: all final)."""
        return int(self.carry.row[0]) if self.carry is not None and len(self.carry) else None

    def finish(self):
        self.pending_stop = True
        return self._plan(None, final=True)
