"""Numba kernels for the hot loops of large files (optional compiled fast path).

Each kernel is a byte-for-byte or block-for-block transcription of a readable
reference that stays in the package and is what small files use:

* :func:`scan_block` does the line classification and number parsing of
  :func:`.fastparse._scan_numpy` in one pass over the bytes instead of ~40 NumPy
  passes; anything it is not sure about makes it give up (status != 0) and the
  caller runs the NumPy reference on that block, so its results are the reference's.
* :func:`prusa_blocks` / :func:`prusa_calculate` are
  :class:`.prusa_planner.PrusaTimeMachine`'s per-block set-up and look-ahead passes,
  with the same floating-point operations in the same order.

``tests/test_gcode_jit.py`` checks both paths give the same per-move times on corpus
files. Numba is imported only when a kernel is first needed (``available()``);
compiled code is cached on disk (``cache=True``), so only the first large file
after an install pays the compile time.
"""

from __future__ import annotations

import os

import numpy as np

_NUMBA = None  # module once imported, False when unavailable or disabled


def available() -> bool:
    """True when the compiled path may be used (numba importable, not disabled)."""
    global _NUMBA
    if _NUMBA is None:
        if os.environ.get("SLICER_ENERGY_JIT", "").strip() == "0":
            _NUMBA = False
        else:
            try:
                import numba

                _NUMBA = numba
            except ImportError:  # pragma: no cover - numba is a dependency
                _NUMBA = False
    return _NUMBA is not False


# Files at least this large (bytes on disk) take the compiled path by default: below
# it, importing numba and loading cached kernels (~0.5 s) costs more than it saves.
JIT_MIN_BYTES = 8 << 20


def want_jit(size_bytes: int, jit: bool | None) -> bool:
    """Resolve a ``jit`` argument (None: decide by file size; env SLICER_ENERGY_JIT=1/0 forces)."""
    env = os.environ.get("SLICER_ENERGY_JIT", "").strip()
    if jit is None:
        jit = True if env == "1" else (False if env == "0" else size_bytes >= JIT_MIN_BYTES)
    return bool(jit) and available()


_KERNELS: dict = {}


def kernel(name: str):
    """The compiled kernel ``name`` (compiled, or loaded from the disk cache, on first use)."""
    k = _KERNELS.get(name)
    if k is None:
        opts = {"cache": True, "nogil": True, "error_model": "numpy", "boundscheck": False}
        k = _KERNELS[name] = _NUMBA.njit(**opts)(globals()[f"_{name}_py"])
    return k


# --------------------------------------------------------------------- parser
_G, _M, _SP, _TAB, _SC, _NL, _CR, _DOT = 71, 77, 32, 9, 59, 10, 13, 46
# first three characters after ';' of the comments parse._comment acts on
_CODES = np.array(
    [
        (ord(w[0]) << 16) | (ord(w[1]) << 8) | ord(w[2])
        for w in ("TYP", "LAY", "WIP", "COL", "PAU", "Gen", "Sli", "FLA", "TIM")
    ],
    np.int64,
)
_POW10 = 10.0 ** np.arange(23)


def _scan_block_py(a, codes, pow10):
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
def _marlin_jerk_py(v_axis, vnom, jerk, seg_start, prev_v, prev_nom, prev_safe):
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
            if v_exit > v_entry:
                if v_entry > 0 or v_exit < 0:
                    j = v_exit - v_entry
                else:
                    j = max(v_exit, -v_entry)
            elif v_entry < 0 or v_exit > 0:
                j = v_entry - v_exit
            else:
                j = max(-v_exit, v_entry)
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
