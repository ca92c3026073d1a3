"""The vectorised parser must give exactly what the line-by-line parser gives."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_energy.gcode.fastparse import _decimals
from slicer_energy.gcode.parse import Moves, iter_chunks

from conftest import CORPUS

FILES = sorted((CORPUS / "gcode").glob("*.gcode.gz")) if (CORPUS / "gcode").exists() else []


def _load(path, fast, chunk_lines=50_000):
    parts, events = [], []
    for ch, state in iter_chunks(path, chunk_lines=chunk_lines, fast=fast):
        st = state
        parts.append(ch.moves)
        events.extend(ch.events)
    return Moves.concat(parts), events, st


@pytest.mark.skipif(not FILES, reason="../shared/corpus/gcode not found")
@pytest.mark.parametrize("path", FILES, ids=[p.name[:40] for p in FILES])
def test_fast_parser_equals_line_parser_on_corpus(path):
    a, ea, sa = _load(path, True)
    b, eb, sb = _load(path, False)
    assert len(a) == len(b)
    _same(a, b)
    assert [(e.index, e.line, e.cmd, e.params) for e in ea] == [
        (e.index, e.line, e.cmd, e.params) for e in eb
    ]
    assert sa.features == sb.features and sa.unknown == sb.unknown and sa.line == sb.line
    assert sa.pos == pytest.approx(sb.pos, abs=1e-6) and sa.f_mm_s == sb.f_mm_s


def _same(a, b):
    """Exact, except absolute-E increments: the vectorised path takes E[i] - E[i-1]
    directly, the loop goes through accumulated physical E, so they differ by ulps."""
    for name in Moves.__dataclass_fields__:
        if name == "de":
            np.testing.assert_allclose(a.de, b.de, rtol=0, atol=1e-9)
        else:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_mixed_modes_and_odd_lines_agree(tmp_path):
    lines = [
        "G90",
        "M82",
        "G1 X1 Y1 E1 F1200",
        "G92 E0 (reset)",
        "G1 X2 E0.5",
        "M83",
        "G1 X3 E0.25 ; relative now",
        "G91",
        "G1 Z0.5",
        "G90",
        "G92 Z0",
        "G1",
        "G1 X4",
        ";TYPE:Perimeter",
        "G1 X5 Y5 E.1",
        "G1  X6",
        "G1 X7 E-.05 F600",
        "G28 X",
        "G1 X8\r",
        "N5 G1 X9*12",
        "G1 X10 E0.1 ; WIPE",
        ";WIPE_START",
        "G1 X11 E-0.2",
        ";WIPE_END",
        "M204 S800",
        "G1 X-0.000 Y+2.5",
    ]
    p = tmp_path / "mix.gcode"
    p.write_bytes(("\n".join(lines) + "\n").encode())
    a, ea, _ = _load(p, True, chunk_lines=7)
    b, eb, _ = _load(p, False, chunk_lines=7)
    _same(a, b)
    assert [(e.index, e.cmd) for e in ea] == [(e.index, e.cmd) for e in eb]


@pytest.mark.parametrize(
    "text", ["0", "-0", "12.5", ".8", "-.8", "+3.", "123456.789012", "0.1", "1.005", "99999.99999"]
)
def test_decimals_bit_exact(text):
    w = len(text)
    chars = np.frombuffer(text.encode(), np.uint8).reshape(w, 1).copy()
    got = _decimals(chars)[0]
    assert got == float(text) and np.signbit(got) == np.signbit(float(text))
