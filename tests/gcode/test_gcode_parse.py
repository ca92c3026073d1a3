"""Parser behaviour on hand-written and broken G-code (each expectation worked out by hand)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from slicer_energy.errors import GcodeError
from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.parse import parse_file, parse_lines
from slicer_energy.machine import load_machine


def test_positions_modes_and_offsets():
    mv, ev, st = parse_lines(
        [
            "G90",
            "M83",
            "G1 X10 Y0 F6000",
            "G91",
            "G1 X5 E1",
            "G90",
            "G92 X0",
            "G1 X1",
            "M82",
            "G92 E10",
            "G1 E12",
            "G1 X2 E11.5",
        ]
    )
    assert mv.x.tolist() == [10.0, 15.0, 16.0, 16.0, 17.0]  # G92 X0 at X15 -> X1 is X16
    assert mv.de.tolist() == [0.0, 1.0, 0.0, 2.0, -0.5]
    assert mv.f[0] == pytest.approx(100.0)
    assert [e.cmd for e in ev] == ["G92", "G92"]


def test_compact_words_line_numbers_and_checksums():
    mv, _, _ = parse_lines(["N10 G1 X5 Y6*33", "G1X7Y8F600", "g1 x9 y10"])
    assert mv.x.tolist() == [5.0, 7.0, 9.0]
    assert mv.y.tolist() == [6.0, 8.0, 10.0]


def test_arc_length():
    # quarter circle of radius 10 from (10,0) to (0,10) around the origin: length 5*pi
    mv, _, _ = parse_lines(["G1 X10 Y0", "G3 X0 Y10 I-10 J0 E1"])
    seg = np.hypot(np.diff(mv.x), np.diff(mv.y))
    assert seg.sum() == pytest.approx(5 * np.pi, rel=2e-3)
    assert mv.de[1:].sum() == pytest.approx(1.0)


def test_unknown_command_counted_once(tmp_path):
    p = tmp_path / "u.gcode"
    p.write_text("G28\nM9999 S1\nG1 X10 F600\nM9999 S2\nFOO_MACRO A=1\nG1 X20\nM9999\n")
    res = analyze_file(p, load_machine("prusa-mk3s"), mode="marlin")
    assert res.unknown_commands == {"M9999": 3, "FOO_MACRO": 1}
    msgs = [w for w in res.warnings if "M9999" in w]
    assert len(msgs) == 1 and "3 times" in msgs[0] and ":2:" in msgs[0]


def test_malformed_number_names_line_and_text(tmp_path):
    p = tmp_path / "bad.gcode"
    p.write_text("G1 X1 F600\nG1 X2\nG1 X1..5 Y2\nG1 X3\n")
    with pytest.raises(GcodeError) as exc:
        parse_file(p)
    msg = str(exc.value)
    assert "bad.gcode:3" in msg and "X1..5" in msg


def test_malformed_number_in_interpreted_command(tmp_path):
    p = tmp_path / "bad2.gcode"
    p.write_text("M104 S2x0\n")
    with pytest.raises(GcodeError, match=r"bad2.gcode:1.*S2x0"):
        parse_file(p)


def test_string_argument_of_ignored_command_is_fine(tmp_path):
    p = tmp_path / "ok.gcode"
    p.write_text('M862.3 P "MK3S"\nG1 X1 F600\n')
    mv, _, st = parse_file(p)
    assert len(mv) == 1 and not st.unknown


@pytest.mark.parametrize(
    "payload",
    [
        bytes(range(256)) * 20,
        b"GCDE\x01\x00\x00\x00" + b"\x00" * 100,
        b"\x89PNG\r\n\x1a\n" + bytes(200),
    ],
)
def test_binary_junk_rejected_in_one_line(tmp_path, payload):
    p = tmp_path / "junk.gcode"
    p.write_bytes(payload)
    with pytest.raises(GcodeError) as exc:
        parse_file(p)
    assert "\n" not in str(exc.value) and "junk.gcode" in str(exc.value)


def test_invalid_utf8_later_in_file(tmp_path):
    p = tmp_path / "late.gcode"
    p.write_bytes(b"G1 X1 F600\n" * 1000 + b"G1 X\xff\xfe2\n")
    with pytest.raises(GcodeError, match="late.gcode:1001"):
        parse_file(p)


def test_truncated_final_line_is_a_warning(tmp_path):
    p = tmp_path / "cut.gcode"
    p.write_text("G1 X1 F600\nG1 X2\nG1 X3 Y")  # upload cut mid-word
    mv, _, st = parse_file(p)
    assert mv.x.tolist() == [1.0, 2.0]
    assert any("truncated final line" in w and "cut.gcode:3" in w for w in st.warnings)


def test_gzip_and_plain_agree(tmp_path):
    text = "G1 X1 F600\nG1 X5 Y5 E1\nM106 S128\nG1 X0 Y0\n"
    (tmp_path / "a.gcode").write_text(text)
    with gzip.open(tmp_path / "a.gcode.gz", "wt") as fh:
        fh.write(text)
    a, _, _ = parse_file(tmp_path / "a.gcode")
    b, _, _ = parse_file(tmp_path / "a.gcode.gz")
    assert a.x.tolist() == b.x.tolist() and a.de.tolist() == b.de.tolist()


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.gcode"
    p.write_text("; nothing\n")
    with pytest.raises(GcodeError, match="no moves"):
        analyze_file(p, load_machine("prusa-mk3s"))
    with pytest.raises(GcodeError, match="not found"):
        parse_file(tmp_path / "nope.gcode")


def test_chunking_does_not_change_the_result(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 100, size=(3000, 2))
    lines = ["M83", "G1 F3000"] + [f"G1 X{x:.3f} Y{y:.3f} E0.05" for x, y in pts]
    p = tmp_path / "r.gcode"
    p.write_text("\n".join(lines) + "\n")
    m = load_machine("prusa-mk3s")
    for mode in ("marlin", "klipper", "prusa"):
        whole = analyze_file(p, m, mode=mode, chunk_lines=10**6)
        small = analyze_file(p, m, mode=mode, chunk_lines=97)
        assert small.print_time_s == pytest.approx(whole.print_time_s, rel=1e-9), mode
