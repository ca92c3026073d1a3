"""Vectorised fast path of the G-code parser (same output as :mod:`.parse`'s line loop).

Most lines of a sliced file are plain ``G1 X.. Y.. E..`` moves. This module finds
them in a block of bytes with NumPy (line starts, comment cut, word starts), turns
all their numbers into floats in one ``astype`` call, and resolves modal values
(feedrate, absolute X/Y/Z, absolute or relative E with ``G92 E`` resets) with
forward-fills. Every other line goes through the ordinary per-line handlers in
order. Anything unusual in a block (G2/G3, G91, G20, G92 on X/Y/Z, compact or
lower-case words, bytes that do not parse) makes :func:`parse_block` return
``None`` and the caller re-parses that block with the exact line loop, which
also produces the precise error messages. ``tests/gcode/test_gcode_fastparse.py``
checks that both paths give identical moves and events on every corpus file.
"""

from __future__ import annotations

import re

import numpy as np

from . import _jit
from .lineloop import parse_piece
from .words import (
    FLAG_HOME,
    FLAG_WIPE,
    MAX_ABS_MM,
    MODE_SETS,
    Event,
    Moves,
    ParseState,
    apply_command,
    apply_comment,
    split_words,
)

_G, _SP, _SC, _NL, _CR = ord("G"), ord(" "), ord(";"), ord("\n"), ord("\r")
_LETTERS = {ord(c): i for i, c in enumerate("XYZEF")}
_FALLBACK_CMDS = {"G0", "G1", "G2", "G3"}
_MAX_NUM = 24
# first three characters after ';' of the comments words.apply_comment acts on
_COMMENT_CODES = np.array(
    [
        (ord(w[0]) << 16) | (ord(w[1]) << 8) | ord(w[2])
        for w in ("TYP", "LAY", "WIP", "COL", "PAU", "Gen", "Sli", "FLA", "TIM", "Pri")
    ],
    np.int32,
)
_LUT = np.full(256, -1, np.int64)
for _i, _c in enumerate("XYZEF"):
    _LUT[ord(_c)] = _i
_PAREN = re.compile(r"\([^)]*\)?")
# the most frequent comment lines: 0 layer change, 1 wipe start, 2 wipe end
_QUICK_COMMENTS = {b";LAYER_CHANGE": 0, b";WIPE_START": 1, b";WIPE_END": 2}
# _line_plan results by line bytes (a file repeats 'G92 E0', 'M204 S800', ';TYPE:...'):
# one cache per parse, passed in by the caller, so threads parsing files share nothing
LinePlans = dict[bytes, tuple]
_MAX_PLANS = 4096  # bounded: memory must not grow with the file


class _Fallback(Exception):
    pass


class _Split(Exception):
    """A command that depends on the position reached so far: parse the block in two."""

    def __init__(self, offsets: list[int], scan: tuple | None = None) -> None:
        self.offsets = offsets
        self.scan = scan  # the block's scan, which the pieces reuse


def _ffill(vals: np.ndarray, init: float) -> np.ndarray:
    """Replace NaN by the last non-NaN value before it (``init`` at the start)."""
    v = np.concatenate(([init], vals))
    idx = np.where(np.isnan(v), 0, np.arange(len(v)))
    np.maximum.accumulate(idx, out=idx)
    return v[idx][1:]


def parse_block(
    buf: bytes,
    st: ParseState,
    events: list[Event],
    jit: bool = False,
    plans: LinePlans | None = None,
) -> Moves | None:
    """Parse ``buf`` (whole lines, ending in a newline) or return None to fall back.

    The block is first cut before every mode change (G90/G91, M82/M83, G20/G21)
    and every G92 on X/Y/Z, so that each piece has one mode and one origin. Pieces
    the vectorised path cannot take are parsed by the line loop. On None, ``st``
    and ``events`` are left untouched. ``plans`` caches what repeated lines say
    across the blocks of one parse (a fresh cache when None).
    """
    plans = {} if plans is None else plans
    snap = _snapshot(st)
    n_ev = len(events)
    try:
        return _parse_block(buf, st, events, plans, cut_check=True, jit=jit)
    except _Split as sp:
        cuts = [0, *sp.offsets, len(buf)]
        scan = sp.scan
    except _Fallback:
        _restore(st, snap)
        del events[n_ev:]
        return None
    _restore(st, snap)
    del events[n_ev:]
    parts = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=False):
        piece = buf[lo:hi]
        snap = _snapshot(st)
        n_ev = len(events)
        try:
            sub = _sub_scan(scan, lo, hi) if scan is not None else None
            parts.append(_parse_block(piece, st, events, plans, cut_check=False, jit=jit, scan=sub))
            continue
        except (_Fallback, _Split):
            _restore(st, snap)
            del events[n_ev:]
        mv, ev = parse_piece(piece, st)
        parts.append(mv)
        events.extend(ev)
    return Moves.concat(parts)


def _snapshot(st: ParseState) -> dict:
    d = dict(st.__dict__)
    for k, v in d.items():
        if isinstance(v, (list, dict)):
            d[k] = v.copy()
    return d


def _restore(st: ParseState, snap: dict) -> None:
    st.__dict__.update(snap)


def _sub_scan(scan: tuple, lo: int, hi: int) -> tuple:
    """The scan of ``buf[lo:hi]`` (whole lines) cut out of the scan of ``buf``."""
    starts, ends, mv_lines, slow_lines, head_lines, mv_cols = scan
    l0, l1 = np.searchsorted(starts, [lo, hi]).tolist()
    m0, m1 = np.searchsorted(mv_lines, [l0, l1]).tolist()
    s0, s1 = np.searchsorted(slow_lines, [l0, l1]).tolist()
    h0, h1 = np.searchsorted(head_lines, [l0, l1]).tolist()
    return (
        starts[l0:l1] - lo,
        ends[l0:l1] - lo,
        mv_lines[m0:m1] - l0,
        slow_lines[s0:s1] - l0,
        head_lines[h0:h1] - l0,
        mv_cols[:, m0:m1],
    )


def _parse_block(
    buf: bytes,
    st: ParseState,
    events: list[Event],
    plans: LinePlans,
    cut_check: bool,
    jit: bool = False,
    scan: tuple | None = None,
) -> Moves:
    if scan is None:
        a = np.frombuffer(buf, np.uint8)
        scan = _scan_jit(a) if jit else None
        if scan is None:
            scan = _scan_numpy(a)
    if cut_check:  # cut the block once, before any real work (see parse_block)
        _check_cuts(buf, scan)
    n_lines = len(scan[0])
    line0, base = st.line, st.n_moves
    oth = _OtherLines(buf, st, events, plans, scan)
    oth.read()
    if st.inches or not st.abs_xyz:
        raise _Fallback
    row_line, cols, flags = _rows(scan[2], scan[5], oth)
    pos, origin = st.pos, st.origin
    xyz = [origin[i] + _ffill(cols[i], pos[i] - origin[i]) for i in range(3)]
    f_raw = cols[4] / 60.0
    bad_f = f_raw <= 0  # Marlin ignores F <= 0; NaN here means 'no F word'
    if bad_f.any():
        _bad_feeds(st, row_line[bad_f] + line0 + 1, cols[4][bad_f])
        f_raw[bad_f] = np.nan
    f = _ffill(f_raw, st.f_mm_s)
    e_col = cols[3]
    e_col[flags == FLAG_HOME] = np.nan
    de = _extrusion(st, e_col, row_line, oth)
    # per-row feature / layer / wipe from the comment lines before it
    feat, lay, wipe = _row_states(row_line, oth.state_line, oth.state_vals, oth.init_state)
    flags = flags | np.where(wipe, FLAG_WIPE, 0).astype(np.uint8)
    n = len(row_line)
    if n:
        pos[0], pos[1], pos[2] = float(xyz[0][-1]), float(xyz[1][-1]), float(xyz[2][-1])
        st.f_mm_s = float(f[-1])
    st.line = line0 + n_lines
    st.n_moves = base + n
    return Moves(
        line=(row_line + line0 + 1).astype(np.int64),
        x=xyz[0],
        y=xyz[1],
        z=xyz[2],
        de=de,
        f=f,
        feature=feat.astype(np.int16),
        layer=lay.astype(np.int32),
        flags=flags,
    )


def _check_cuts(buf: bytes, scan: tuple) -> None:
    """Raise _Split at the lines after which moves must be read differently (a mode
    change, a G92 on X/Y/Z) once the block has moved."""
    starts, ends, mv_lines, _, head_lines, _ = scan
    first_move = int(mv_lines[0]) if len(mv_lines) else len(starts)
    cuts = []
    for li in head_lines[head_lines > first_move].tolist():
        line = buf[starts[li] : ends[li]]
        if line == b"G92 E0":
            continue
        if line[:3] == b"G92" and not any(c in line.split(b";", 1)[0] for c in (b"X", b"Y", b"Z")):
            continue
        cuts.append(int(starts[li]))
    if cuts:
        raise _Split(cuts, scan)


class _OtherLines:
    """The non-move lines of one block, in order, through the ordinary handlers.

    Collects what they say about the block's moves: G28 rows (``synth_*``), G92 E
    resets (``resets_*``) and the feature/layer/wipe state after each comment line
    that changes it (``state_*``).
    """

    def __init__(
        self, buf: bytes, st: ParseState, events: list[Event], plans: LinePlans, scan: tuple
    ) -> None:
        self.buf, self.st, self.events, self.plans, self.scan = buf, st, events, plans, scan
        self.synth_lines: list[int] = []  # G28 rows (index into lines)
        self.synth_axes: list[tuple[bool, bool, bool]] = []
        self.resets_line: list[int] = []  # G92 E
        self.resets_val: list[float] = []
        self.state_line: list[int] = []
        self.state_vals: list[tuple[int, int, bool]] = []
        self.init_state = (st.feature, st.layer, st.wiping)
        mv_lines = scan[2]
        self.n_lines = len(scan[0])
        self.first_move = int(mv_lines[0]) if len(mv_lines) else self.n_lines

    def read(self) -> None:
        st, buf = self.st, self.buf
        starts, ends, mv_lines, slow_lines, _, _ = self.scan
        line0, base = st.line, st.n_moves
        moves_before = np.searchsorted(mv_lines, slow_lines).tolist()
        for li, s0, e0, mb in zip(
            slow_lines.tolist(),
            starts[slow_lines].tolist(),
            ends[slow_lines].tolist(),
            moves_before,
            strict=True,
        ):
            raw = buf[s0:e0]
            quick = _QUICK_COMMENTS.get(raw)
            if quick is not None:  # what apply_comment does with these, without the detour
                if quick == 0:
                    st.layer += 1
                else:
                    st.wiping = quick == 1
                self._mark(li)
                continue
            comment, type_comment, s, cmd, params = self._plan(raw)
            st.line = line0 + li + 1
            st.n_moves = base + mb + len(self.synth_lines)
            if comment is not None:
                apply_comment(st, comment, self.events)
                self._mark(li)
                continue
            if type_comment is not None:
                apply_comment(st, type_comment, self.events)
                self._mark(li)
            if s is not None:
                self._command(li, cmd, dict(params), s)

    def _plan(self, raw: bytes) -> tuple:
        plans = self.plans
        plan = plans.get(raw)
        if plan is None:
            plan = _line_plan(self.st, raw)
            if len(plans) >= _MAX_PLANS:
                plans.clear()
            plans[raw] = plan
        return plan

    def _mark(self, li: int) -> None:
        st = self.st
        self.state_line.append(li)
        self.state_vals.append((st.feature, st.layer, st.wiping))

    def _command(self, li: int, cmd: str, params: dict[str, float], s: str) -> None:
        st, events = self.st, self.events
        if cmd in _FALLBACK_CMDS:
            raise _Fallback
        moved = self.first_move < li or bool(self.synth_lines) or bool(self.resets_line)
        if cmd in MODE_SETS or (cmd == "G92" and (set(params) - {"E"} or not params)):
            # these depend on (or change how to read) the position reached so far:
            # fine before the block's first move, otherwise split the block here
            if moved and (cmd == "G92" or _mode_changes(st, cmd)):
                raise _Split([int(self.scan[0][li])], self.scan)
            if not st.abs_xyz and self.first_move < self.n_lines:
                raise _Fallback
            apply_command(st, cmd, params, s, events, None)
        elif cmd == "G92":
            if not abs(params["E"]) <= MAX_ABS_MM:
                raise _Fallback  # the line loop names the line
            self.resets_line.append(li)
            self.resets_val.append(params["E"])
            events.append(Event(st.n_moves, st.line, cmd, params, s))
        elif cmd == "G28":
            if not st.abs_xyz:
                raise _Fallback
            named = tuple(ax in params for ax in "XYZ")
            if not any(named):
                named = (True, True, True)
            events.append(Event(st.n_moves, st.line, cmd, params, s))
            self.synth_lines.append(li)
            self.synth_axes.append(named)
        else:
            apply_command(st, cmd, params, s, events, None)


def _rows(mv_lines: np.ndarray, mv_cols: np.ndarray, oth: _OtherLines) -> tuple:
    """Move lines and G28 rows ordered by line: (line index, X Y Z E F columns, flags)."""
    n_mv, n_syn = len(mv_lines), len(oth.synth_lines)
    cols = np.full((5, n_mv + n_syn), np.nan)
    cols[:, :n_mv] = mv_cols
    row_line = np.concatenate((mv_lines, np.asarray(oth.synth_lines, np.int64)))
    flags = np.zeros(n_mv + n_syn, np.uint8)
    flags[n_mv:] = FLAG_HOME
    for r, named in enumerate(oth.synth_axes):
        for ax in range(3):
            if named[ax]:
                cols[ax, n_mv + r] = 0.0
    order = np.argsort(row_line, kind="stable")
    return row_line[order], cols[:, order], flags[order]


def _extrusion(
    st: ParseState, e_col: np.ndarray, row_line: np.ndarray, oth: _OtherLines
) -> np.ndarray:
    """Filament step per row from the E words (absolute or relative, with G92 E resets);
    moves st's E position and origin to the block's end."""
    pos, origin = st.pos, st.origin
    resets_line, resets_val = oth.resets_line, oth.resets_val
    if not st.abs_e:
        de = np.nan_to_num(e_col, nan=0.0)
        pos[3] += float(de.sum())
        if resets_line:
            origin[3] = pos[3] - resets_val[-1]
        return de
    # logical E sequence: moves with E, and G92 E resets, in line order
    has_e = ~np.isnan(e_col)
    seq_line = np.concatenate((row_line[has_e], np.asarray(resets_line, np.int64)))
    seq_val = np.concatenate((e_col[has_e], np.asarray(resets_val, np.float64)))
    seq_is_move = np.concatenate((np.ones(has_e.sum(), bool), np.zeros(len(resets_line), bool)))
    so = np.argsort(seq_line, kind="stable")
    seq_val, seq_is_move = seq_val[so], seq_is_move[so]
    prev = np.concatenate(([pos[3] - origin[3]], seq_val[:-1]))
    de_seq = seq_val - prev
    de = np.zeros(len(e_col))
    de[np.flatnonzero(has_e)] = de_seq[seq_is_move]
    last_logical = seq_val[-1] if len(seq_val) else pos[3] - origin[3]
    pos3 = pos[3] + float(de.sum())
    origin[3] = pos3 - last_logical
    pos[3] = pos3
    return de


def _line_plan(st: ParseState, raw: bytes):
    """What a non-move line says, as a pure function of its bytes (so it can be cached):
    (comment of a comment line, ';TYPE:' comment after a command, command text,
    command, parameters). Raises _Fallback for what only the line loop handles."""
    try:
        s = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Fallback from None
    if s[0] == ";":
        return s[1:], None, None, None, None
    type_comment = None
    cpos = s.find(";")
    if cpos >= 0:
        comment = s[cpos + 1 :]
        s = s[:cpos].strip()
        if comment.startswith("TYPE:"):
            type_comment = comment
        if not s:
            return None, type_comment, None, None, None
    if "(" in s:
        s = _PAREN.sub(" ", s).strip()
        if not s:
            return None, type_comment, None, None, None
    if s[0] == "N" or "*" in s:
        raise _Fallback
    try:
        cmd, params = split_words(st, s)
    except Exception:
        raise _Fallback from None
    return None, type_comment, s, cmd, params


def _scan_jit(a: np.ndarray):
    """The compiled scan (same output as :func:`_scan_numpy`), or None to run that."""
    status, starts, ends, kind, cols, n = _jit.scan_block(a)
    if status != 0:
        return None
    starts, ends, kind = starts[:n], ends[:n], kind[:n]
    k = kind & 3
    mv_lines = np.flatnonzero(k == 1)
    return (
        starts,
        ends,
        mv_lines,
        np.flatnonzero(k == 2),
        np.flatnonzero(kind & 4),
        cols[:, mv_lines],
    )


def _scan_numpy(a: np.ndarray):
    """Line bounds, move lines and their X Y Z E F values, lines for the Python handlers.

    The readable reference of the scan; raises _Fallback for what it cannot take.
    """
    nl = np.flatnonzero(a == _NL)
    if len(nl) == 0 or nl[-1] != len(a) - 1:
        raise _Fallback
    starts = np.concatenate(([0], nl[:-1] + 1))
    ends = nl.copy()
    cr = (ends > starts) & (a[np.maximum(ends - 1, 0)] == _CR)
    ends[cr] -= 1
    la = len(a)
    b0 = a[starts]
    b1 = a[np.minimum(starts + 1, la - 1)]
    b2 = a[np.minimum(starts + 2, la - 1)]
    length = ends - starts
    is_move = (
        (b0 == _G)
        & ((b1 == ord("1")) | (b1 == ord("0")))
        & (((b2 == _SP) & (length > 2)) | (length == 2))
    )
    blank = ends == starts
    mv_lines = np.flatnonzero(is_move)
    # comment lines: only those whose first bytes can matter reach Python
    b3 = a[np.minimum(starts + 3, la - 1)]
    code = (b1.astype(np.int32) << 16) | (b2.astype(np.int32) << 8) | b3
    useful = np.isin(code, _COMMENT_CODES) | (b1 == _SP)
    slow_lines = np.flatnonzero(~is_move & ~blank & ((b0 != _SC) | useful))
    head = (b0 == _G) & (
        ((b1 == ord("9")) & ((b2 == ord("0")) | (b2 == ord("1")) | (b2 == ord("2"))))
        | ((b1 == ord("2")) & ((b2 == ord("0")) | (b2 == ord("1"))))
    ) | ((b0 == ord("M")) & (b1 == ord("8")) & ((b2 == ord("2")) | (b2 == ord("3"))))
    head &= ~((b3 >= 48) & (b3 <= 57) | (b3 == 46)) | (length == 3)
    head_lines = np.flatnonzero(head)
    mv_cols = _move_numbers(a, starts, ends, mv_lines)
    return starts, ends, mv_lines, slow_lines, head_lines, mv_cols


def _move_numbers(
    a: np.ndarray, starts: np.ndarray, ends: np.ndarray, mv_lines: np.ndarray
) -> np.ndarray:
    """X Y Z E F of every move line at once (5 x moves, NaN where a word is absent)."""
    la = len(a)
    me = ends[mv_lines]
    ms = np.minimum(starts[mv_lines] + 3, me)
    sc = np.append(np.flatnonzero(a == _SC), la)
    me = np.minimum(me, sc[np.searchsorted(sc, ms)])
    # body mask: bytes that belong to a move line's words
    mark = np.zeros(la + 1, np.int8)
    mark[ms] += 1  # ms (and me) are distinct across lines
    mark[me] -= 1
    body = np.cumsum(mark[:-1], dtype=np.int8).view(bool)
    # words start with X/Y/Z/E/F right after a blank; a number runs to the next word
    cand = np.flatnonzero(_IS_LETTER[a[1:]] & _IS_BLANK[a[:-1]]) + 1
    tok = cand[body[cand]]
    tok_line = np.searchsorted(ms, tok, side="right") - 1  # index into mv_lines
    n_tok_line = np.bincount(tok_line, minlength=len(ms))
    if ((me > ms) & (n_tok_line == 0)).any():
        raise _Fallback  # a move body without X/Y/Z/E/F words
    if len(tok):
        first = np.concatenate(([0], np.flatnonzero(np.diff(tok_line)) + 1))
        if (tok[first] != ms[tok_line[first]]).any():
            raise _Fallback  # something before the first word ('G1  X', 'G1 A1 X')
    letters = a[tok]
    same = np.concatenate((tok_line[1:] == tok_line[:-1], [False]))
    nxt = np.concatenate((tok[1:], [0]))
    tend = np.where(same, nxt, me[tok_line])
    width = tend - tok - 1
    if len(tok) and (width.min() < 1 or width.max() > _MAX_NUM):
        raise _Fallback
    wmax = int(width.max()) if len(tok) else 1
    idx = tok.astype(np.int32)[None, :] + np.arange(1, wmax + 1, dtype=np.int32)[:, None]
    chars = a[np.minimum(idx, la - 1)]
    chars[np.arange(wmax)[:, None] >= width[None, :]] = 0
    vals = _decimals(chars)

    mv_cols = np.full((5, len(mv_lines)), np.nan)
    mv_cols[_LUT[letters], tok_line] = vals
    return mv_cols


def _bad_feeds(st: ParseState, lines: np.ndarray, values: np.ndarray) -> None:
    """Count F words <= 0 as the line loop does (words.bad_feed)."""
    if not st.bad_feeds:
        st.bad_feed_line, st.bad_feed_value = int(lines[0]), float(values[0])
    st.bad_feeds += len(lines)


def _mode_changes(st: ParseState, cmd: str) -> bool:
    flag, value = MODE_SETS[cmd]
    return getattr(st, flag) != value


def _row_states(row_line, state_line, state_vals, init_state):
    n = len(row_line)
    if not state_line:
        return (
            np.full(n, init_state[0]),
            np.full(n, init_state[1]),
            np.full(n, bool(init_state[2])),
        )
    sv = np.asarray([init_state, *state_vals], np.int64)
    k = np.searchsorted(np.asarray(state_line, np.int64), row_line)  # 0 = before any comment
    return sv[k, 0], sv[k, 1], sv[k, 2].astype(bool)


def _decimals(chars: np.ndarray) -> np.ndarray:
    """Parse columns of ASCII decimals ('-12.5', '.8', '3 ') to float64, exactly like float().

    ``chars`` is (width, n) uint8, zero padded. The digits form an integer m (< 2**53)
    and k digits follow the point; m / 10**k is one correctly rounded IEEE division of
    two exact numbers, hence the same double as the correctly rounded decimal that
    float() returns. Anything else (exponents, stray characters, more than 15 digits)
    raises _Fallback.
    """
    w, n_tok = chars.shape
    if n_tok == 0:
        return np.zeros(0)
    cls = _CLASS[chars]  # 0 pad, 1 digit, 2 dot, 3 sign, 4 blank, 5 other
    if (cls == 5).any() or (cls[1:] == 3).any():
        raise _Fallback
    blank = cls == 4
    if blank.any():
        ended = np.logical_or.accumulate(blank, axis=0)
        if (ended & (cls != 0) & ~blank).any():
            raise _Fallback  # text after the number inside the word
    is_dig = cls == 1
    is_dot = cls == 2
    n_dig = is_dig.sum(axis=0)
    if (n_dig == 0).any() or n_dig.max() > 15 or (is_dot.sum(axis=0) > 1).any():
        raise _Fallback
    below = np.cumsum(is_dig[::-1], axis=0)[::-1] - is_dig  # digits after this row
    digit = np.where(is_dig, chars.astype(np.int64) - 48, 0)
    m = (digit * _POW10_INT[below]).sum(axis=0)
    k = (is_dig & np.logical_or.accumulate(is_dot, axis=0)).sum(axis=0)
    out = m.astype(np.float64) / _POW10[k]
    return np.where(chars[0] == ord("-"), -out, out)


_CLASS = np.full(256, 5, np.uint8)
_CLASS[0] = 0
_CLASS[48:58] = 1
_CLASS[ord(".")] = 2
_CLASS[[ord("-"), ord("+")]] = 3
_CLASS[[32, 9, 13]] = 4
_POW10_INT = 10 ** np.arange(19, dtype=np.int64)
_POW10 = 10.0 ** np.arange(23)
_IS_BLANK = np.zeros(256, bool)
_IS_BLANK[[32, 9]] = True
_IS_LETTER = np.zeros(256, bool)
_IS_LETTER[[ord(ch) for ch in "XYZEF"]] = True
