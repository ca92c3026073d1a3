"""The per-line G-code loop: the exact reference parser, and the fallback of the fast one.

Every line goes through Python here; :mod:`.fastparse` gives the same moves and events
on the common lines and hands each block it cannot take to :func:`parse_piece`, which
also words the precise error messages.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Iterator

import numpy as np

from ..errors import GcodeError
from .words import (
    FLAG_WIPE,
    Chunk,
    Event,
    Moves,
    ParseState,
    apply_command,
    apply_comment,
    bad_feed,
    line_error,
    set_feed,
    split_words,
)


def parse_piece(piece: bytes, st: ParseState) -> tuple[Moves, list[Event]]:
    """Parse whole lines of bytes with the line loop (one chunk), continuing ``st``."""
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError as exc:
        n = st.line + piece.count(b"\n", 0, exc.start) + 1
        raise GcodeError(
            f"{st.path}:{n}: not UTF-8 text (byte {piece[exc.start]:#04x}); is this a binary file?"
        ) from None
    parts, events = [], []
    for ch, _ in iter_lines(io.StringIO(text), st, 1 << 62):
        parts.append(ch.moves)
        events.extend(ch.events)
    return Moves.concat(parts), events


def iter_lines(
    fh: Iterable[str], st: ParseState, chunk_lines: int
) -> Iterator[tuple[Chunk, ParseState]]:
    """Parse text lines one at a time, a chunk every ``chunk_lines`` lines."""
    rows = _Rows(st)
    n_lines_chunk = 0
    last_line = ""
    for raw in fh:
        st.line += 1
        n_lines_chunk += 1
        last_line = raw
        if raw[:3] in ("G1 ", "G0 "):  # plain moves: the vast majority of lines
            xyze = _move_words(st, raw)
            if xyze is None:
                break  # a truncated final line
            nx, ny, nz, de = _move_to(st, *xyze)
            rows.add_move(nx, ny, nz, de, FLAG_WIPE if st.wiping else 0)
        else:
            s = _command_text(st, raw, rows.events)
            if s is None:
                continue
            try:
                cmd, params = split_words(st, s)
            except GcodeError:
                if not raw.endswith("\n"):
                    _truncated(st, raw)
                    break
                raise
            apply_command(st, cmd, params, s, rows.events, rows.add_move)
        if n_lines_chunk >= chunk_lines:
            yield rows.flush(), st
            n_lines_chunk = 0
    if last_line and not last_line.endswith("\n"):
        st.warnings.append(f"{st.path}:{st.line}: file does not end with a newline (truncated?)")
    yield rows.flush(), st


class _Rows:
    """The moves (as column lists) and events parsed since the last chunk."""

    def __init__(self, st: ParseState) -> None:
        self.st = st
        self._reset()

    def _reset(self) -> None:
        self.cols: list[list] = [[] for _ in range(9)]  # line x y z de f feature layer flags
        self.events: list[Event] = []
        self.start = self.st.n_moves

    def add_move(self, x: float, y: float, z: float, de: float, flags: int) -> None:
        """One row at the current line, feedrate, feature and layer (see words.AddMove)."""
        st, c = self.st, self.cols
        c[0].append(st.line)
        c[1].append(x)
        c[2].append(y)
        c[3].append(z)
        c[4].append(de)
        c[5].append(st.f_mm_s)
        c[6].append(st.feature)
        c[7].append(st.layer)
        c[8].append(flags)
        st.n_moves += 1

    def flush(self) -> Chunk:
        """The rows so far as one chunk; starts the next one empty."""
        types = (np.int64, *(np.float64,) * 5, np.int16, np.int32, np.uint8)
        mv = Moves(*(np.array(col, t) for col, t in zip(self.cols, types, strict=True)))
        ch = Chunk(mv, self.start, self.events)
        self._reset()
        return ch


def _truncated(st: ParseState, raw: str) -> None:
    st.warnings.append(f"{st.path}:{st.line}: truncated final line ignored: {raw.rstrip()!r}")


def _move_words(st: ParseState, raw: str) -> tuple | None:
    """X, Y, Z, E (None where absent) of a 'G1 '/'G0 ' line; sets the feedrate from F.

    The common spelling is read directly; anything else goes through split_words,
    which names what is wrong. None: a truncated final line, warned and ignored.
    """
    sc = raw.find(";")
    words = (raw[3:sc] if sc >= 0 else raw[3:]).split()
    x = y = z = e = None
    try:
        for w in words:
            c = w[0]
            if c == "X":
                x = float(w[1:])
            elif c == "Y":
                y = float(w[1:])
            elif c == "Z":
                z = float(w[1:])
            elif c == "E":
                e = float(w[1:])
            elif c == "F":
                f = float(w[1:])
                if f > 0:
                    st.f_mm_s = f / 60.0
                else:
                    bad_feed(st, f, raw)
            else:
                raise ValueError
    except (ValueError, IndexError):
        if not raw.endswith("\n"):  # only the last line can lack one
            _truncated(st, raw)
            return None
        return _move_words_strict(st, raw, sc)
    return x, y, z, e


def _move_words_strict(st: ParseState, raw: str, sc: int) -> tuple:
    """X, Y, Z, E of a move line (comment from ``sc``) read by split_words, which names
    a malformed word."""
    _, params = split_words(st, raw[:sc] if sc >= 0 else raw, strict=True)
    x, y, z, e = params.get("X"), params.get("Y"), params.get("Z"), params.get("E")
    if "F" in params:
        set_feed(st, params["F"], raw)
    if any(v is not None and math.isnan(v) for v in (x, y, z, e)):
        raise line_error(st, raw, "axis word without a number") from None
    return x, y, z, e


def _move_to(
    st: ParseState, x: float | None, y: float | None, z: float | None, e: float | None
) -> tuple[float, float, float, float]:
    """The move's physical end point and filament step in the current modes; updates st.pos."""
    pos, origin = st.pos, st.origin
    if st.inches:
        x, y, z, e = (None if v is None else v * 25.4 for v in (x, y, z, e))
    if st.abs_xyz:
        nx = pos[0] if x is None else origin[0] + x
        ny = pos[1] if y is None else origin[1] + y
        nz = pos[2] if z is None else origin[2] + z
    else:
        nx = pos[0] + (x or 0.0)
        ny = pos[1] + (y or 0.0)
        nz = pos[2] + (z or 0.0)
    if e is None:
        de = 0.0
    elif st.abs_e and st.abs_xyz:
        de = origin[3] + e - pos[3]
    else:
        de = e
    pos[0], pos[1], pos[2] = nx, ny, nz
    pos[3] += de
    return nx, ny, nz, de


def _command_text(st: ParseState, raw: str, events: list[Event]) -> str | None:
    """A non-move line's command text without comments, line number or checksum.

    Comments are applied here (a ';TYPE:' after a command too); None when nothing
    is left to run.
    """
    s = raw.strip()
    if not s:
        return None
    if s[0] == ";":
        apply_comment(st, s[1:], events)
        return None
    if s[0] == "(":
        return None
    sc = s.find(";")
    if sc >= 0:
        comment = s[sc + 1 :]
        s = s[:sc].strip()
        if comment.startswith("TYPE:"):
            apply_comment(st, comment, events)
        if not s:
            return None
    if "(" in s:  # RS274 comment '(Reset after prime)'
        s = re.sub(r"\([^)]*\)?", " ", s).strip()
        if not s:
            return None
    if s[0] == "N" and " " in s:  # line number 'N123 G1 ... *71'
        s = s.split(" ", 1)[1]
    star = s.find("*")
    if star >= 0:
        s = s[:star].rstrip()
    if "\x00" in s:
        raise line_error(st, raw[:40], "binary data in text G-code")
    return s
