"""The compiled kernels (slicer_energy/gcode/_jit.py) must give what the readable
reference paths give: the same parsed moves and events, and the same per-move
times in every planner mode, on real files from several slicers."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_energy.gcode import _jit
from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.fastparse import _Fallback, _scan_jit, _scan_numpy
from slicer_energy.gcode.parse import Moves, iter_chunks
from slicer_energy.machine import load_machine

from conftest import CORPUS

pytestmark = pytest.mark.skipif(not _jit.available(), reason="numba not importable")

GCODE = CORPUS / "gcode"
ALL = sorted(GCODE.glob("*.gcode.gz")) if GCODE.exists() else []
# one or more files per slicer: PrusaSlicer, Cura, Simplify3D, ideaMaker, SuperSlicer
PLANNED = [
    "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz",
    "kjuchniewicz__25mm15-box_CURA.gcode.gz",
    "x40sw0n__xyzCalibration_cube.gcode.gz",
    "theshamot__part53171_FDM_ABS_FeatureTestVertical-orientation_0.2mm_PLA_ENDER3_18m.gcode.gz",
    "embercc__3DBenchy.gcode.gz",
    "jdkd44__3DBenchy.gcode.gz",
]


def _parse(path, jit, chunk_lines=200_000):
    parts, events, st = [], [], None
    for ch, state in iter_chunks(path, chunk_lines=chunk_lines, jit=jit):
        st = state
        parts.append(ch.moves)
        events.extend(ch.events)
    return Moves.concat(parts), events, st


def _same_parse(a, b):
    (ma, ea, sa), (mb, eb, sb) = a, b
    for name in Moves.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(ma, name), getattr(mb, name), err_msg=name)
    assert [(e.index, e.line, e.cmd, e.params, e.text) for e in ea] == [
        (e.index, e.line, e.cmd, e.params, e.text) for e in eb
    ]
    assert sa.features == sb.features and sa.unknown == sb.unknown and sa.line == sb.line
    assert sa.pos == sb.pos and sa.f_mm_s == sb.f_mm_s and sa.warnings == sb.warnings


@pytest.mark.skipif(not ALL, reason="../shared/corpus/gcode not found")
@pytest.mark.parametrize("path", ALL, ids=[p.name[:40] for p in ALL])
def test_compiled_scan_parses_like_numpy_scan(path):
    _same_parse(_parse(path, True), _parse(path, False))


@pytest.mark.skipif(not ALL, reason="../shared/corpus/gcode not found")
@pytest.mark.parametrize("name", PLANNED, ids=[n[:30] for n in PLANNED])
@pytest.mark.parametrize("mode", ["marlin", "klipper", "prusa"])
def test_compiled_planners_give_the_reference_per_move_times(name, mode):
    path = GCODE / name
    if not path.exists():
        pytest.skip(f"{path} not in the corpus")
    m = load_machine("ender3-v2")
    # small chunks: the kernels' state (look-ahead queue, previous block) crosses chunks
    fast = analyze_file(path, m, mode=mode, jit=True, chunk_lines=7_000)
    ref = analyze_file(path, m, mode=mode, jit=False, chunk_lines=7_000)
    assert fast.n_moves == ref.n_moves and len(ref.duration_s) == ref.n_moves
    assert ref.print_time_s > 0
    np.testing.assert_array_equal(fast.duration_s, ref.duration_s)
    assert fast.time_s == ref.time_s and fast.energy_j == ref.energy_j
    assert fast.time_by_feature_s == ref.time_by_feature_s


ODD_BLOCKS = [
    b"G1 X1 X2\n",  # repeated word
    b"G1  X1\n",  # two blanks before the first word
    b"G1 X1Y2\n",  # compact words
    b"G1 x1\n",  # lower case
    b"G1 X1.2.3\n",  # two points
    b"G1 X1234567890123456\n",  # more digits than a double holds exactly
    b"G1 X-\n",  # sign without digits
    b"G1 A1\n",  # an axis we do not read
    b"G1    \n",  # only blanks
    b"G1 X1 5\n",  # text after the number
    b"G1 X1",  # no final newline
]


@pytest.mark.parametrize("buf", ODD_BLOCKS, ids=range(len(ODD_BLOCKS)))
def test_compiled_scan_gives_up_where_unsure(buf):
    """Odd move lines: the kernel declines the block (the NumPy scan, which may itself
    decline to the line loop, then decides), so it never guesses."""
    a = np.frombuffer(b"G1 X0 Y0\n;TYPE:Perimeter\n" + buf, np.uint8)
    assert _scan_jit(a) is None


def test_compiled_scan_equals_numpy_scan_on_plain_lines():
    buf = (
        b"G28\nG90\nM82\nG92 E0\n;TYPE:Perimeter\nG1 Z.2 F7800\nG1 X-0.000 Y+2.5 E.1\n"
        b"G0 F9000 X10 Y10\r\nG1 X11 E-0.2 ; retract\n;WIPE_START\nG1\nG1 ;nothing\n"
        b"M204 S800\n;LAYER_CHANGE\n\nG1 X12\t Y3 E0.00001\n"
    )
    a = np.frombuffer(buf, np.uint8)
    got, ref = _scan_jit(a), _scan_numpy(a)
    assert got is not None
    for x, y in zip(got, ref, strict=True):
        np.testing.assert_array_equal(x, y)
    # the move columns hold what float() reads
    assert got[5][0, 1] == float("-0.000") and np.signbit(got[5][0, 1])
    assert got[5][3, 6] == 0.00001 and np.isnan(got[5][:, 4]).all()


def test_numpy_scan_rejects_what_the_kernel_rejects():
    a = np.frombuffer(b"G1 X1.2.3\n", np.uint8)
    with pytest.raises(_Fallback):
        _scan_numpy(a)
