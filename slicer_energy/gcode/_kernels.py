"""The numba kernels of :mod:`._jit`, compiled lazily per kernel and cached on disk.

Importing this module imports numba, so only :func:`._jit.kernel` imports it, once
the compiled path is wanted. Every function is decorated here, at import, and never
rebound: the kernels call the compiled helpers by their module names, and the move
time and junction speed of PrusaSlicer's blocks are :mod:`..motion`'s own source
wrapped with ``njit``.
See :mod:`._jit` for what each kernel transcribes.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import motion

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy", "boundscheck": False}
_njit = numba.njit(**_OPTS)

prusa_trapezoid = _njit(motion.prusa_trapezoid)
prusa_block_time = _njit(motion.prusa_block_time)
prusa_junction_vmax = _njit(motion.prusa_junction_vmax)


# --------------------------------------------------------------------- parser
@_njit
def scan_block(a, codes, pow10):  # noqa: C901, PLR0912, PLR0915 - numba byte scanner, one loop by design
    """One pass over ``a`` (uint8, whole lines ending in '\\n').

    Returns (status, starts, ends, kind, cols, n_lines): ``kind`` per line is 0
    (blank or a comment nothing reads), 1 (a plain G0/G1 move), 2 (a line for the
    Python handlers); bit 4 marks a possible mode change / G92 (a cut candidate).
    ``cols[:, i]`` holds X, Y, Z, E, F of move line i (NaN where absent). status 1:
    something the NumPy reference would treat differently or reject; run it instead.
    """
    la = a.shape[0]
    n_est = 0
    for p in range(la):
        if a[p] == 10:
            n_est += 1
    starts = np.empty(n_est, np.int64)
    ends = np.empty(n_est, np.int64)
    kind = np.zeros(n_est, np.uint8)
    cols = np.full((5, n_est), np.nan)
    if la == 0 or a[la - 1] != 10:
        return 1, starts, ends, kind, cols, 0
    li = 0
    s = 0
    while s < la:
        e = s
        while a[e] != 10:
            e += 1
        nxt = e + 1
        if e > s and a[e - 1] == 13:
            e -= 1
        starts[li] = s
        ends[li] = e
        length = e - s
        b0 = a[min(s, la - 1)]
        b1 = a[min(s + 1, la - 1)]
        b2 = a[min(s + 2, la - 1)]
        b3 = a[min(s + 3, la - 1)]
        k = 0
        is_move = b0 == 71 and (b1 == 49 or b1 == 48) and ((b2 == 32 and length > 2) or length == 2)
        if is_move:
            k = 1
        elif length > 0:
            code = (np.int64(b1) << 16) | (np.int64(b2) << 8) | np.int64(b3)
            useful = b1 == 32
            for c in codes:
                if code == c:
                    useful = True
            if b0 != 59 or useful:
                k = 2
            # cut candidates: G90/G91/G92, G20/G21, M82/M83 as whole words
            head = (
                b0 == 71
                and (
                    (b1 == 57 and (b2 == 48 or b2 == 49 or b2 == 50))
                    or (b1 == 50 and (b2 == 48 or b2 == 49))
                )
            ) or (b0 == 77 and b1 == 56 and (b2 == 50 or b2 == 51))
            if head and (not ((b3 >= 48 and b3 <= 57) or b3 == 46) or length == 3):
                k |= 4
        kind[li] = k
        if is_move:
            ms = min(s + 3, e)
            me = ms
            while me < e and a[me] != 59:
                me += 1
            p = ms
            n_tok = 0
            seen = 0
            while p < me:
                c = a[p]
                if c == 32 or c == 9:
                    p += 1
                    continue
                # a word must start right after a blank with one of X Y Z E F
                if p > 0 and not (a[p - 1] == 32 or a[p - 1] == 9):
                    return 1, starts, ends, kind, cols, 0
                if n_tok == 0 and p != ms:
                    return 1, starts, ends, kind, cols, 0
                if c == 88:
                    ax = 0
                elif c == 89:
                    ax = 1
                elif c == 90:
                    ax = 2
                elif c == 69:
                    ax = 3
                elif c == 70:
                    ax = 4
                else:
                    return 1, starts, ends, kind, cols, 0
                if seen & (1 << ax):
                    return 1, starts, ends, kind, cols, 0
                seen |= 1 << ax
                n_tok += 1
                # the number: optional sign, digits with at most one dot
                q = p + 1
                neg = False
                if q < me and (a[q] == 45 or a[q] == 43):
                    neg = a[q] == 45
                    q += 1
                m = np.int64(0)
                n_dig = 0
                n_frac = 0
                dot = False
                while q < me:
                    c = a[q]
                    if c >= 48 and c <= 57:
                        m = m * 10 + (c - 48)
                        n_dig += 1
                        if dot:
                            n_frac += 1
                    elif c == 46 and not dot:
                        dot = True
                    else:
                        break
                    q += 1
                if n_dig == 0 or n_dig > 15 or q - p - 1 > 24:
                    return 1, starts, ends, kind, cols, 0
                # after the number only blanks up to the next word or the end
                if q < me and not (a[q] == 32 or a[q] == 9 or a[q] == 13):
                    return 1, starts, ends, kind, cols, 0
                while q < me and (a[q] == 32 or a[q] == 9 or a[q] == 13):
                    q += 1
                if q < me and not (
                    a[q] == 88 or a[q] == 89 or a[q] == 90 or a[q] == 69 or a[q] == 70
                ):
                    return 1, starts, ends, kind, cols, 0
                if q - p - 1 > 24:
                    return 1, starts, ends, kind, cols, 0
                v = m / pow10[n_frac]
                cols[ax, li] = -v if neg else v
                p = q
            if me > ms and n_tok == 0:
                return 1, starts, ends, kind, cols, 0  # a body of blanks only
        li += 1
        s = nxt
    return 0, starts, ends, kind, cols, li


# -------------------------------------------------------------------- planners
@_njit
def marlin_jerk(v_axis, vnom, jerk, seg_start, prev_v, prev_nom, prev_safe):
    """:meth:`.planner.FirmwarePlanner._marlin_jerk`, one block at a time.

    Returns (max entry speed², safe speeds); the same operations in the same order
    as the NumPy reference, so the same doubles.
    """
    n = vnom.shape[0]
    out = np.empty(n)
    safe = np.empty(n)
    for i in range(n):
        av = abs(v_axis[i, 0])
        r0 = jerk[i, 0] / av if av > jerk[i, 0] else 1.0
        av = abs(v_axis[i, 1])
        r1 = jerk[i, 1] / av if av > jerk[i, 1] else 1.0
        av = abs(v_axis[i, 2])
        r2 = jerk[i, 2] / av if av > jerk[i, 2] else 1.0
        av = abs(v_axis[i, 3])
        r3 = jerk[i, 3] / av if av > jerk[i, 3] else 1.0
        safe[i] = vnom[i] * min(min(r0, r1), min(r2, r3))
    for i in range(n):
        if i == 0:
            pn, ps = prev_nom, prev_safe
        else:
            pn, ps = vnom[i - 1], safe[i - 1]
        vn = vnom[i]
        ssf = vn / pn if pn > vn else 1.0
        vmax = min(pn, vn)
        v_factor = 1.0
        for a in range(4):
            pv = prev_v[a] if i == 0 else v_axis[i - 1, a]
            v_exit = pv * ssf * v_factor
            v_entry = v_axis[i, a] * v_factor
            j = _axis_jerk(v_exit, v_entry)
            if j > jerk[i, a]:
                v_factor = v_factor * jerk[i, a] / j
        vmax = vmax * v_factor
        thr = vmax * 0.99
        if ps > thr and safe[i] > thr:
            vmax = safe[i]
        if seg_start[i] or pn <= 1e-4:
            vmax = safe[i]
        out[i] = vmax * vmax
    return out, safe


# PrusaSlicer TimeMachine queue: one row per block (columns below), plus int columns
_Q_ACC, _Q_DIST, _Q_CRUISE, _Q_ENTRY, _Q_MAX_ENTRY, _Q_EXIT_SAFE = 0, 1, 2, 3, 4, 5
_Q_ACC_UNTIL, _Q_DEC_AFTER, _Q_TR_CRUISE = 6, 7, 8
_QI_ROW, _QI_NOMINAL, _QI_RECALC = 0, 1, 2
# state vector: previous block and last position
_S_FEED, _S_AXIS, _S_SAFE, _S_LAST, _S_TIME = 0, 1, 5, 6, 9
# limits row (one per snapshot)
_L_MAX_F, _L_MAX_A, _L_JERK, _L_ACC_P, _L_ACC_R, _L_ACC_T = 0, 4, 8, 12, 13, 14
_L_MIN_EXT, _L_MIN_TRAVEL, _L_E_FACTOR = 15, 16, 17


@_njit
def _pymin(a, b):
    return b if b < a else a  # Python's min(a, b)


@_njit
def _pymax(a, b):
    return b if b > a else a  # Python's max(a, b)


@_njit
def _axis_jerk(v_exit, v_entry):
    """Speed jump on one axis from a block's exit to the next block's entry (Marlin's
    classic jerk, as PrusaSlicer copies it): the difference when both move the same way,
    the larger of the two speeds when the axis reverses or starts/stops."""
    if v_exit > v_entry:
        if v_entry > 0.0 or v_exit < 0.0:
            return v_exit - v_entry
        return _pymax(v_exit, -v_entry)
    if v_entry < 0.0 or v_exit > 0.0:
        return v_entry - v_exit
    return _pymax(-v_exit, v_entry)


@_njit
def _trapezoid(q, k, exit_v):
    """_Block.trapezoid on queue row ``k``."""
    acc_until, dec_after, reached = prusa_trapezoid(
        q[k, _Q_ACC], q[k, _Q_DIST], q[k, _Q_ENTRY], q[k, _Q_CRUISE], exit_v
    )
    q[k, _Q_ACC_UNTIL] = acc_until
    q[k, _Q_DEC_AFTER] = dec_after
    q[k, _Q_TR_CRUISE] = reached


@_njit
def _block_time(q, k):
    """_Block.time of queue row ``k``."""
    return prusa_block_time(
        q[k, _Q_ACC],
        q[k, _Q_DIST],
        q[k, _Q_ENTRY],
        q[k, _Q_ACC_UNTIL],
        q[k, _Q_DEC_AFTER],
        q[k, _Q_TR_CRUISE],
    )


@_njit
def _prusa_calculate(q, qi, nq, keep, state, out_rows, out_t, n_out):
    """PrusaTimeMachine._calculate_time: returns (blocks left, outputs written)."""
    n = nq
    if n < 2:
        return nq, n_out
    for i in range(n - 1):  # forward pass
        if qi[i, _QI_NOMINAL] == 0 and q[i, _Q_ENTRY] < q[i + 1, _Q_ENTRY]:
            pe = q[i, _Q_ENTRY]
            v = _pymin(
                q[i + 1, _Q_ENTRY],
                math.sqrt(_pymax(0.0, pe * pe + 2 * q[i, _Q_ACC] * q[i, _Q_DIST])),
            )
            if q[i + 1, _Q_ENTRY] != v:
                q[i + 1, _Q_ENTRY] = v
                qi[i + 1, _QI_RECALC] = 1
    for i in range(n - 1, 0, -1):  # reverse pass
        c = i - 1
        if q[c, _Q_ENTRY] != q[c, _Q_MAX_ENTRY]:
            if qi[c, _QI_NOMINAL] == 0 and q[c, _Q_MAX_ENTRY] > q[i, _Q_ENTRY]:
                ne = q[i, _Q_ENTRY]
                q[c, _Q_ENTRY] = _pymin(
                    q[c, _Q_MAX_ENTRY],
                    math.sqrt(_pymax(0.0, ne * ne + 2 * q[c, _Q_ACC] * q[c, _Q_DIST])),
                )
            else:
                q[c, _Q_ENTRY] = q[c, _Q_MAX_ENTRY]
            qi[c, _QI_RECALC] = 1
    for i in range(1, n):  # recalculate_trapezoids
        if qi[i - 1, _QI_RECALC] != 0 or qi[i, _QI_RECALC] != 0:
            _trapezoid(q, i - 1, q[i, _Q_ENTRY])
            qi[i - 1, _QI_RECALC] = 0
    _trapezoid(q, n - 1, q[n - 1, _Q_EXIT_SAFE])
    qi[n - 1, _QI_RECALC] = 0
    n_commit = n - keep
    for k in range(n_commit):
        t = _block_time(q, k)
        state[_S_TIME] += t
        out_rows[n_out] = qi[k, _QI_ROW]
        out_t[n_out] = t
        n_out += 1
    for k in range(keep):  # del blocks[:n_commit]
        q[k, :] = q[n_commit + k, :]
        qi[k, :] = qi[n_commit + k, :]
    return keep, n_out


@_njit
def _prusa_g1(q, qi, nq, state, lim, scratch, row, px, py, pz, de, f, wipe):  # noqa: C901, PLR0912, PLR0915 - compiled port of PrusaSlicer's G1 handler, kept line for line
    """PrusaTimeMachine._g1: returns the new queue length (0 blocks added: no move)."""
    lx = state[_S_LAST]
    ly = state[_S_LAST + 1]
    lz = state[_S_LAST + 2]
    d0 = px - lx
    d1 = py - ly
    d2 = pz - lz
    state[_S_LAST] = px
    state[_S_LAST + 1] = py
    state[_S_LAST + 2] = pz
    if d0 == 0.0 and d1 == 0.0 and d2 == 0.0 and de == 0.0:
        return nq
    xyz = d0 != 0.0 or d1 != 0.0 or d2 != 0.0
    # move type: 0 travel, 1 extrude, 2 retract/unretract, 3 wipe
    if wipe:
        mtype = 3
    elif de < 0.0:
        mtype = 0 if xyz else 2
    elif de > 0.0:
        if d0 == 0.0 and d1 == 0.0:
            mtype = 0 if d2 != 0.0 else 2
        else:
            mtype = 1
    else:
        mtype = 0
    if mtype == 1 and pz == 0.0:
        mtype = 0
    sq = d0 * d0 + d1 * d1 + d2 * d2
    dist = math.sqrt(sq) if sq > 0.0 else abs(de)
    inv = 1.0 / dist
    if de == 0.0:
        feed = _pymax(f, lim[_L_MIN_TRAVEL])
    else:
        feed = _pymax(f, lim[_L_MIN_EXT])
    axis = scratch[0:4]
    dv = scratch[4:8]
    dv[0] = d0
    dv[1] = d1
    dv[2] = d2
    dv[3] = de
    for a in range(4):
        axis[a] = feed * dv[a] * inv
    axis[3] *= lim[_L_E_FACTOR]
    factor = 1.0
    for a in range(4):
        va = abs(axis[a])
        if va != 0.0 and lim[_L_MAX_F + a] != 0.0:
            factor = _pymin(factor, lim[_L_MAX_F + a] / va)
    cruise = factor * feed
    if factor < 1.0:
        for a in range(4):
            axis[a] = axis[a] * factor
    if mtype == 0:
        acc = lim[_L_ACC_T]
    elif not xyz:
        acc = lim[_L_ACC_R]
    else:
        acc = lim[_L_ACC_P]
    for a in range(4):
        if acc * abs(dv[a]) * inv > lim[_L_MAX_A + a]:
            acc = lim[_L_MAX_A + a]
    safe = cruise
    for a in range(4):
        if abs(axis[a]) > lim[_L_JERK + a]:
            safe = _pymin(safe, lim[_L_JERK + a])
    vmax = safe
    p_feed = state[_S_FEED]
    if nq > 0 and p_feed > 1e-4:
        vmax = prusa_junction_vmax(
            cruise,
            safe,
            p_feed,
            state[_S_SAFE],
            state[_S_AXIS : _S_AXIS + 4],
            axis,
            lim[_L_JERK : _L_JERK + 4],
        )
    v_allow = math.sqrt(safe * safe + 2.0 * acc * dist)
    k = nq
    q[k, _Q_ACC] = acc
    q[k, _Q_DIST] = dist
    q[k, _Q_CRUISE] = cruise
    q[k, _Q_ENTRY] = _pymin(vmax, v_allow)
    q[k, _Q_MAX_ENTRY] = vmax
    q[k, _Q_EXIT_SAFE] = safe
    qi[k, _QI_ROW] = row
    qi[k, _QI_NOMINAL] = 1 if cruise <= v_allow else 0
    qi[k, _QI_RECALC] = 1
    _trapezoid(q, k, safe)
    state[_S_FEED] = feed
    for a in range(4):
        state[_S_AXIS + a] = axis[a]
    state[_S_SAFE] = safe
    return nq + 1


@_njit
def prusa_feed(
    xs, ys, zs, des, fs, flags, start, ev_idx, ev_kind, ev_snap, snaps, q, qi, nq_box, state
):
    """PrusaTimeMachine.moves (and events) over one chunk.

    Events come pre-digested: kind 0 switches to limits row ``ev_snap``, kind 1
    synchronises (empties the queue). Returns (rows, seconds) committed.
    """
    n = xs.shape[0]
    out_rows = np.empty(n + q.shape[0] + 1, np.int64)
    out_t = np.empty(n + q.shape[0] + 1)
    n_out = 0
    scratch = np.empty(8)
    nq = nq_box[0]
    lim = snaps[0]
    ei = 0
    nev = ev_idx.shape[0]
    for i in range(n):
        while ei < nev and ev_idx[ei] <= start + i:
            if ev_kind[ei] == 0:
                lim = snaps[ev_snap[ei]]
            else:
                nq, n_out = _prusa_calculate(q, qi, nq, 0, state, out_rows, out_t, n_out)
            ei += 1
        if flags[i] & 2:  # FLAG_ARC: PrusaSlicer 2.5 skips arcs, position not updated
            continue
        wipe = (flags[i] & 1) != 0
        nq = _prusa_g1(
            q, qi, nq, state, lim, scratch, start + i, xs[i], ys[i], zs[i], des[i], fs[i], wipe
        )
        if nq > 256:  # REFRESH_THRESHOLD
            nq, n_out = _prusa_calculate(q, qi, nq, 64, state, out_rows, out_t, n_out)
    while ei < nev:
        if ev_kind[ei] == 0:
            lim = snaps[ev_snap[ei]]
        else:
            nq, n_out = _prusa_calculate(q, qi, nq, 0, state, out_rows, out_t, n_out)
        ei += 1
    nq_box[0] = nq
    return out_rows[:n_out], out_t[:n_out]
