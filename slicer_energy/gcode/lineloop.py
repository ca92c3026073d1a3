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


def iter_lines(  # noqa: C901, PLR0912, PLR0915 - the readable per-line parser, one branch per line kind; split planned (issue 15 item 4)
    fh: Iterable[str], st: ParseState, chunk_lines: int
) -> Iterator[tuple[Chunk, ParseState]]:
    """Parse text lines one at a time, a chunk every ``chunk_lines`` lines."""
    L, X, Y, Z, DE, F, FEAT, LAY, FL = ([] for _ in range(9))
    events: list[Event] = []
    start = st.n_moves
    pos, origin = st.pos, st.origin
    n_lines_chunk = 0
    last_line = ""

    def flush_chunk() -> Chunk:
        nonlocal L, X, Y, Z, DE, F, FEAT, LAY, FL, events, start
        mv = Moves(
            np.array(L, np.int64),
            np.array(X, np.float64),
            np.array(Y, np.float64),
            np.array(Z, np.float64),
            np.array(DE, np.float64),
            np.array(F, np.float64),
            np.array(FEAT, np.int16),
            np.array(LAY, np.int32),
            np.array(FL, np.uint8),
        )
        ch = Chunk(mv, start, events)
        L, X, Y, Z, DE, F, FEAT, LAY, FL = ([] for _ in range(9))
        events = []
        start = st.n_moves
        return ch

    def add_move(x, y, z, de, flags):
        L.append(st.line)
        X.append(x)
        Y.append(y)
        Z.append(z)
        DE.append(de)
        F.append(st.f_mm_s)
        FEAT.append(st.feature)
        LAY.append(st.layer)
        FL.append(flags)
        st.n_moves += 1

    for raw in fh:
        st.line += 1
        n_lines_chunk += 1
        last_line = raw
        # ---- fast path: 'G1 ' / 'G0 ' moves (the vast majority of lines) ----
        if raw[:3] in ("G1 ", "G0 "):
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
                    st.warnings.append(
                        f"{st.path}:{st.line}: truncated final line ignored: {raw.rstrip()!r}"
                    )
                    break
                cmd, params = split_words(st, raw[:sc] if sc >= 0 else raw, strict=True)
                x, y, z, e = params.get("X"), params.get("Y"), params.get("Z"), params.get("E")
                if "F" in params:
                    set_feed(st, params["F"], raw)
                if any(v is not None and math.isnan(v) for v in (x, y, z, e)):
                    raise line_error(st, raw, "axis word without a number") from None
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
            add_move(nx, ny, nz, de, FLAG_WIPE if st.wiping else 0)
            if n_lines_chunk >= chunk_lines:
                yield flush_chunk(), st
                n_lines_chunk = 0
            continue
        # ---- comments ----
        s = raw.strip()
        if not s:
            continue
        if s[0] == ";":
            apply_comment(st, s[1:], events)
            continue
        if s[0] == "(":
            continue
        sc = s.find(";")
        if sc >= 0:
            comment = s[sc + 1 :]
            s = s[:sc].strip()
            if comment.startswith("TYPE:"):
                apply_comment(st, comment, events)
            if not s:
                continue
        if "(" in s:  # RS274 comment '(Reset after prime)'
            s = re.sub(r"\([^)]*\)?", " ", s).strip()
            if not s:
                continue
        if s[0] == "N" and " " in s:  # line number 'N123 G1 ... *71'
            s = s.split(" ", 1)[1]
        star = s.find("*")
        if star >= 0:
            s = s[:star].rstrip()
        if "\x00" in s:
            raise line_error(st, raw[:40], "binary data in text G-code")
        try:
            cmd, params = split_words(st, s)
        except GcodeError:
            if not raw.endswith("\n"):
                st.warnings.append(
                    f"{st.path}:{st.line}: truncated final line ignored: {raw.rstrip()!r}"
                )
                break
            raise
        apply_command(st, cmd, params, s, events, add_move)
        if n_lines_chunk >= chunk_lines:
            yield flush_chunk(), st
            n_lines_chunk = 0
    if last_line and not last_line.endswith("\n"):
        st.warnings.append(f"{st.path}:{st.line}: file does not end with a newline (truncated?)")
    yield flush_chunk(), st
