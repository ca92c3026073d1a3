"""Streaming G-code parser: a file, a stream or lines in; blocks of moves (NumPy arrays) and
events out.

The parser knows G-code, not firmware: it tracks positioning modes (G90/G91,
M82/M83), units (G20/G21) and G92 offsets, and writes every G0/G1 (and the
segments of G2/G3 arcs) as one row of physical end positions ``x, y, z`` (mm),
the filament increment ``de`` (mm) and the commanded feedrate ``f`` (mm/s). Every
other command that matters to time or energy (M204, M109, G4, fan, ...) becomes an
:class:`Event` that points at the move index before which it happened. Firmware
rules (what M204 S means, whether G4 stops the planner, ...) live in the planners.

Moves come in chunks of a bounded number of lines, so memory does not grow with
the file (``iter_chunks``); ``parse_file`` concatenates them for small files.
Blocks of bytes go to the vectorised parser (:mod:`.fastparse`), which hands what it
cannot take to the line loop (:mod:`.lineloop`); both apply lines through
:mod:`.words`. Imports run one way: words <- lineloop <- fastparse <- parse.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Union

import numpy as np

from ..errors import GcodeError
from ._jit import want_jit
from .fastparse import parse_block
from .lineloop import iter_lines, parse_piece
from .words import MAX_ABS_MM, Chunk, Event, Moves, ParseState

# A file (str or path; plain or .gz), an open binary or text stream, or text lines.
GcodeSource = Union[str, "os.PathLike[str]", IO[bytes], IO[str], Iterable[str], "GcodeInput"]


@dataclass(frozen=True)
class GcodeInput:
    """Where the G-code comes from: a file on disk, or text already in memory.

    Streams are read into memory (the PrusaSlicer config block is read from the end
    before parsing, which a stream cannot rewind to); files are streamed.
    """

    name: str  # what error messages and results call it
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, source: GcodeSource, name: str | None = None) -> GcodeInput:
        """A path (``str`` is always a path), a stream (bytes or text) or lines of text."""
        if isinstance(source, GcodeInput):
            return source
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            return cls(name or str(path), path=path)
        if hasattr(source, "read"):
            raw = source.read()
            data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
            return cls(name or str(getattr(source, "name", "<stream>")), data=data)
        text = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in source)
        return cls(name or "<lines>", data=text.encode("utf-8"))

    def size_bytes(self) -> int:
        """Uncompressed size (estimated for .gz): what decides the compiled path."""
        if self.data is not None:
            return len(self.data)
        return _file_size(self.path)

    def open_binary(self) -> BinaryIO:
        """The bytes, after the checks that refuse binary data."""
        if self.data is None:
            return _open_binary(self.path)
        _check_head(self.data[:4096], self.name)
        return io.BytesIO(self.data)

    def footer_config(self, tail_bytes: int = 256 * 1024) -> dict[str, str]:
        """``; key = value`` lines at the end (see :func:`read_footer_config`)."""
        if self.data is None:
            return read_footer_config(self.path, tail_bytes)
        return _footer_lines(self.data[-tail_bytes:])


def open_gcode_text(path: Path) -> io.TextIOBase:
    """Open plain or gzip G-code as text; reject binary data before parsing."""
    try:
        raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
        head = raw.read(4096)
    except FileNotFoundError:
        raise GcodeError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise GcodeError(f"{path}: cannot read: {exc}") from None
    try:
        _check_head(head, path)
    except GcodeError:
        raw.close()
        raise
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline=None)


def _check_head(head: bytes, name: str | Path) -> None:
    """Refuse binary G-code and binary data in the first 4 KiB."""
    if head.startswith(b"GCDE"):
        raise GcodeError(
            f"{name}: binary G-code (.bgcode) is not supported; export plain text G-code"
        )
    if b"\x00" in head or _looks_binary(head):
        raise GcodeError(f"{name}: not a text G-code file (binary data in the first 4 KiB)")


def _looks_binary(head: bytes) -> bool:
    if not head:
        return False
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return ctrl > len(head) // 100 + 1


def check_moves(mv: Moves, st: ParseState) -> None:
    """Refuse non-finite or absurd move values, vectorised over a chunk.

    The per-line parsers take whatever ``float()`` returns ('inf', 'nan', '1e308');
    checking the chunk's columns afterwards costs a few array passes instead of a test
    per word on the hot path. The error names the first offending line and word.
    """
    if not len(mv):
        return
    cols = (("X", mv.x), ("Y", mv.y), ("Z", mv.z), ("E", mv.de))
    if all(np.abs(a).max() <= MAX_ABS_MM for _, a in cols) and np.isfinite(mv.f).all():
        return  # NaN fails '<=', so this is the whole test on good input
    first = None
    for key, a in (*cols, ("F", mv.f)):
        bad = ~np.isfinite(a) if key == "F" else ~(np.abs(a) <= MAX_ABS_MM)
        if bad.any():
            i = int(np.argmax(bad))
            if first is None or i < first[0]:
                first = (i, key, float(a[i]))
    i, key, val = first
    if key == "F":
        what, accepted = f"feedrate {val * 60:g} mm/min", "a finite number"
    else:
        what = f"{'extrusion step' if key == 'E' else 'position'} {val:g} mm"
        accepted = f"a finite number within ±{MAX_ABS_MM:g} mm"
    raise GcodeError(
        f"{st.path}:{int(mv.line[i])}: {key} word out of range: {what}; accepted: {accepted}"
    )


def iter_chunks(
    source: GcodeSource,
    chunk_lines: int = 200_000,
    state: ParseState | None = None,
    fast: bool = True,
    jit: bool | None = None,
) -> Iterator[tuple[Chunk, ParseState]]:
    """Parse ``source`` (a path, plain or .gz; a stream; lines) in chunks of at most
    ``chunk_lines`` lines.

    ``fast`` uses the vectorised block parser (:mod:`.fastparse`) and falls back to
    the per-line loop for blocks it does not handle; ``fast=False`` is the loop only.
    ``jit`` scans blocks with the compiled kernel (:mod:`._jit`, same results); None
    decides by file size, since loading numba costs more than it saves on small files.
    """
    inp = GcodeInput.of(source)
    st = state or ParseState(path=inp.name)
    fh = inp.open_binary()
    jit = fast and want_jit(inp.size_bytes(), jit)
    try:
        yield from _iter_bytes(fh, st, chunk_lines, fast, jit)
    finally:
        fh.close()


def _file_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return size * 5 if path.suffix == ".gz" else size  # G-code compresses about 5:1


def _open_binary(path: Path) -> BinaryIO:
    fh = open_gcode_text(path)  # does the binary-data checks
    raw = fh.detach()
    raw.seek(0)
    return raw


def _iter_bytes(
    fh: BinaryIO, st: ParseState, chunk_lines: int, fast: bool, jit: bool = False
) -> Iterator[tuple[Chunk, ParseState]]:
    carry = b""
    block_bytes = 1 << 20  # 1 MiB: NumPy temporaries stay small and cache-friendly
    plans: dict = {}  # the fast parser's per-line cache, this parse's own (threads)
    while True:
        try:
            data = fh.read(block_bytes)
        except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt .gz
            raise GcodeError(f"{st.path}: cannot read after line {st.line}: {exc}") from None
        eof = not data
        buf = carry + data
        if eof:
            block, carry = buf, b""
        else:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                carry = buf
                continue
            block, carry = buf[:cut], buf[cut:]
        for piece in _split_pieces(block, chunk_lines):
            start = st.n_moves
            events: list[Event] = []
            moves = parse_block(piece, st, events, jit, plans) if fast else None
            if moves is None:
                moves, events = parse_piece(piece, st)
            check_moves(moves, st)
            yield Chunk(moves, start, events), st
        if eof:
            break


def _split_pieces(block: bytes, chunk_lines: int) -> list[bytes]:
    if not block:
        return []
    if block.count(b"\n") <= chunk_lines:
        return [block]
    nl = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    cuts = [0, *(int(nl[i]) + 1 for i in range(chunk_lines - 1, len(nl), chunk_lines))]
    if cuts[-1] != len(block):
        cuts.append(len(block))
    return [block[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=False) if b > a]


def parse_file(source: GcodeSource) -> tuple[Moves, list[Event], ParseState]:
    """Whole file (or stream, or lines) at once: convenient for tests and small files."""
    parts, events = [], []
    st = None
    for chunk, state in iter_chunks(source):
        st = state
        parts.append(chunk.moves)
        events.extend(chunk.events)
    assert st is not None
    return Moves.concat(parts), events, st


def parse_lines(lines: list[str], path: str = "<lines>") -> tuple[Moves, list[Event], ParseState]:
    """Parse G-code given as a list of lines with the line loop only (tests, snippets)."""
    st = ParseState(path=path)
    text = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)
    parts, events = [], []
    for chunk in iter_lines(io.StringIO(text), st, 1 << 30):
        check_moves(chunk[0].moves, st)
        parts.append(chunk[0].moves)
        events.extend(chunk[0].events)
    return Moves.concat(parts), events, st


def read_footer_config(path: str | Path, tail_bytes: int = 256 * 1024) -> dict[str, str]:
    """``; key = value`` lines from the end of a file (PrusaSlicer's config block).

    PrusaSlicer reads this block first when it loads G-code (GP:1296-1306); a
    streaming reader needs it before planning, so the tail is read separately.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                tail = b""
                while block := fh.read(1 << 20):
                    tail = (tail + block)[-tail_bytes:]
        else:
            with open(path, "rb") as fh:
                fh.seek(0, io.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - tail_bytes))
                tail = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise GcodeError(f"{path}: cannot read: {exc}") from None
    return _footer_lines(tail)


def _footer_lines(tail: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for ln in tail.decode("utf-8", "replace").splitlines():
        if ln.startswith("; ") and " = " in ln:
            k, _, v = ln[2:].partition(" = ")
            out[k.strip()] = v.strip()
    return out
