"""Non-finite and absurd numbers (issue 14, item 9): one-line errors, firmware feedrate rules,
strict JSON. Everything here uses files shipped in the repository or written by the test."""

from __future__ import annotations

import gzip
import json
import math
import re

import numpy as np
import pytest

from slicer_energy.cli import main
from slicer_energy.commands._output import print_json
from slicer_energy.errors import GcodeError, ProfileError
from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.parse import iter_chunks, parse_lines
from slicer_energy.machine import load_machine
from slicer_energy.resources import data_dir

# a small print: heat, home, a square at two feedrates, an arc
GCODE = """\
M104 S200
M140 S60
M190 S60
M109 S200
G28
G1 Z0.2 F1200
G1 X10 Y10 F3000
G1 X50 Y10 E2 {word}
G1 X50 Y50 E4
G1 X10 Y50 E6 F1800
G1 X10 Y10 E8
"""


def _write(tmp_path, word: str, name: str = "p.gcode"):
    p = tmp_path / name
    p.write_text(GCODE.format(word=word))
    return p


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("word", ["X1e308", "Xinf", "Xnan", "Y-1e9", "Z1e300", "E1e300", "Finf"])
@pytest.mark.parametrize("jit", [False, True])
def test_absurd_move_word_is_one_line_error_naming_line_and_key(tmp_path, word, jit):
    """Before: X1e308/Xinf gave 0 s of motion, Xnan a made-up time, E1e300 'NaN' energy."""
    p = _write(tmp_path, word)
    with pytest.raises(GcodeError) as ei:
        for _ in iter_chunks(p, jit=jit):
            pass
    msg = str(ei.value)
    assert msg.startswith(f"{p}:8: {word[0]} word out of range"), msg
    assert "\n" not in msg


def test_absurd_word_in_fast_path_block(tmp_path):
    """A 16-digit number is not taken by the vectorised scan; a 15-digit one is and must be
    checked too (the fast path never sees 'inf' but does see 999999999999999)."""
    p = _write(tmp_path, "X999999999999999")
    with pytest.raises(GcodeError, match=r":8: X word out of range"):
        analyze_file(p, load_machine("prusa-mk3s"))


@pytest.mark.parametrize("text", ["G92 Xinf", "G4 Pnan", "M204 S1e999", "G2 X1 Y1 I1e9 J0"])
def test_non_finite_command_parameter_is_error(text):
    with pytest.raises(GcodeError, match=r"<lines>:2: "):
        parse_lines(["G1 X1 Y1 F600", text, "G1 X2 Y2"])


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("G4 P1e300", "P = 1e+300 is out of range"),  # before: time_s 1e300 s
        ("M104 S1e300", "S = 1e+300 is out of range"),
        ("M220 S0", "S = 0 would stop the printer"),  # before: time_s Infinity
        ("M203 X0 Y0", "X = 0 would stop the printer"),  # before: Infinity (marlin)
        ("M204 S-5", "S = -5 must not be negative"),  # before: sqrt of negative, NaN
        ("SET_VELOCITY_LIMIT VELOCITY=0", "VELOCITY = 0 would stop"),  # before: Infinity
        ("G92 E1e300", "G92 beyond"),
    ],
)
@pytest.mark.parametrize("mode", ["marlin", "klipper", "prusa"])
def test_absurd_command_parameter_is_error_naming_the_line(tmp_path, text, what, mode):
    p = tmp_path / "c.gcode"
    p.write_text(GCODE.format(word="").replace("G1 X50 Y50 E4", text + "\nG1 X50 Y50 E4"))
    with pytest.raises(GcodeError) as ei:
        analyze_file(p, load_machine("prusa-mk3s"), mode=mode)
    assert str(ei.value).startswith(f"{p}:9: {what}"), str(ei.value)


def test_malformed_prusaslicer_config_block_is_error(tmp_path):
    """Before: ValueError traceback from float() on the footer of a PrusaSlicer file."""
    p = _write(tmp_path, "")
    p.write_text(p.read_text() + "; machine_max_feedrate_x = fast\n")
    with pytest.raises(GcodeError, match=r"p\.gcode: PrusaSlicer config block: machine_max_fe"):
        analyze_file(p, load_machine("prusa-mk3s"), mode="prusa")


def test_huge_arc_refused_not_planned_chord_by_chord():
    """Before: 'G2 ... I900000' made 5.7 million 1 mm chords in a Python loop."""
    with pytest.raises(GcodeError, match=r"<lines>:2: arc of .* mm"):
        parse_lines(["G1 X0 Y0 F600", "G2 X0 Y0 I900000 J0"])


@pytest.mark.parametrize("word", ["F0", "F-3000"])
@pytest.mark.parametrize("jit", [False, True])
def test_feedrate_not_positive_is_ignored_like_marlin(tmp_path, word, jit):
    """Before: time_s Infinity, energy NaN. Marlin's G0/G1: 'if (parser.linearval('F') > 0)
    feedrate_mm_s = ...', so F<=0 keeps the previous feedrate: same time as without it."""
    m = load_machine("prusa-mk3s")
    bad = analyze_file(_write(tmp_path, word), m, mode="marlin", jit=jit)
    ref = analyze_file(_write(tmp_path, "", "ref.gcode"), m, mode="marlin", jit=jit)
    assert bad.time_s == pytest.approx(ref.time_s)
    assert bad.energy_j == pytest.approx(ref.energy_j)
    assert math.isfinite(bad.time_s)
    (w,) = [w for w in bad.warnings if "ignored" in w]
    assert f"p.gcode:8: {word} ignored" in w and "Marlin" in w


def test_feedrate_warning_once_with_count_on_stderr_and_json_strict(tmp_path, capsys):
    p = tmp_path / "f.gcode"
    p.write_text("G28\nG1 X10 Y10 F3000\nG1 X20 E1 F0\nG1 X30 E2 F-60\nG1 X40 F-1\nG1 X1\n")
    rc, out, err = _run(capsys, "gcode", str(p), "--printer", "prusa-mk3s", "--json")
    assert rc == 0
    d = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in --json output"))
    assert math.isfinite(d["time_s"]) and math.isfinite(d["energy_kwh"])
    lines = [ln for ln in err.splitlines() if "F <= 0" in ln]
    assert lines == [
        f"slicer-energy: warning: {p}:3: F0 and 2 more F <= 0 ignored: the feedrate is kept, "
        "as Marlin does (Klipper would stop the print)"
    ]


def test_feedrate_not_positive_is_error_for_klipper(tmp_path, capsys):
    """Klipper's cmd_G1: 'if gcode_speed <= 0.: raise gcmd.error("Invalid speed ...")'."""
    rc, _, err = _run(capsys, "gcode", str(_write(tmp_path, "F0")), "--mode", "klipper")
    assert rc == 2
    assert err.count("\n") == 1 and re.search(r"p\.gcode:8: F0: Klipper stops", err)


def test_truncated_gzip_is_one_line_error(tmp_path, capsys):
    """Before: an EOFError traceback from gzip."""
    moves = "".join(f"G1 X{i % 101} Y{i % 97} E{i * 0.013:.3f}\n" for i in range(20_000))
    full = gzip.compress((GCODE.format(word="") + moves).encode())
    p = tmp_path / "cut.gcode.gz"
    p.write_bytes(full[: len(full) * 4 // 5])  # the first 4 KiB still decompress
    rc, _, err = _run(capsys, "gcode", str(p))
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith(f"slicer-energy: error: {p}: cannot read") and "Traceback" not in err


def _profile_with(tmp_path, old: str, new: str):
    src = (data_dir("hardware") / "fdm" / "prusa-mk3s.toml").read_text()
    assert old in src
    p = tmp_path / "m.toml"
    p.write_text(src.replace(old, new, 1))
    return p, src[: src.index(old)].count("\n") + 1


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_number_in_toml_profile_is_error(tmp_path, value):
    """Before: 'psu_efficiency = nan' gave energy_kwh: NaN."""
    p, line = _profile_with(
        tmp_path, "psu_efficiency = { value = 0.88", f"psu_efficiency = {{ value = {value}"
    )
    with pytest.raises(ProfileError) as ei:
        load_machine(str(p))
    assert str(ei.value).startswith(f"{p}:{line}: electrical.psu_efficiency = ")


def test_non_finite_inline_value_in_toml_profile_is_error(tmp_path):
    p, line = _profile_with(tmp_path, "p_max_w = { value = 150,", "p_max_w = { value = nan,")
    with pytest.raises(ProfileError, match=rf"m\.toml:{line}: bed\.p_max_w = nan is not a finite"):
        load_machine(str(p))


KLIPPER_CFG = """\
[printer]
kinematics: cartesian
max_velocity: {v}
max_accel: 3000

[extruder]
nozzle_diameter: 0.4
filament_diameter: 1.75
"""


@pytest.mark.parametrize("v", ["nan", "inf", "1e308"])
def test_non_finite_or_absurd_klipper_option_is_error(tmp_path, capsys, v):
    """Before: 'max_velocity: nan' gave 0 s of motion."""
    cfg = tmp_path / "printer.cfg"
    cfg.write_text(KLIPPER_CFG.format(v=v))
    rc, _, err = _run(capsys, "gcode", str(_write(tmp_path, "")), "--printer-config", str(cfg))
    assert rc == 2
    assert err.count("\n") == 1
    assert f"{cfg}:3: [printer] max_velocity = {v}" in err


def test_print_json_refuses_non_finite_and_names_the_key(capsys):
    """Before: json.dump wrote 'NaN' and 'Infinity', which no JSON parser must accept."""
    with pytest.raises(ValueError, match=r"non-finite number at estimate\.time_s"):
        print_json({"file": "nan", "estimate": {"energy": 1.0, "time_s": np.float64("inf")}})
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("max_feedrate_mm_s = [200,", "max_feedrate_mm_s = [0,", "max_feedrate_mm_s[0] = 0"),
        ("max_accel_mm_s2 = [1000,", "max_accel_mm_s2 = [0,", "max_accel_mm_s2[0] = 0"),
    ],
)
def test_zero_motion_limit_in_profile_is_error(tmp_path, old, new, key):
    """Before: a zero X feedrate or acceleration limit gave time_s Infinity (found by fuzzing)."""
    p, _ = _profile_with(tmp_path, old, new)
    with pytest.raises(ProfileError, match=re.escape(f"{key} is outside the allowed range")):
        load_machine(str(p))
