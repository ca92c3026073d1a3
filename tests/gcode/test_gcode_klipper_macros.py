"""Klipper has no native G29: a printer.cfg macro decides what it does (and how long it takes)."""

from __future__ import annotations

import pytest

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.klipper_config import (
    levelling_macros_s,
    machine_from_klipper_config,
    parse_klipper_cfg,
)
from slicer_energy.machine import load_machine

from conftest import need_shared

PRINTER = "[printer]\nkinematics: cartesian\nmax_velocity: 300\nmax_accel: 3000\n"


def _cfg(tmp_path, macros: str):
    p = tmp_path / "printer.cfg"
    p.write_text(PRINTER + macros)
    return parse_klipper_cfg(p)


def test_real_config_g29_loads_a_saved_mesh_and_takes_no_time():
    """theshamot's printer.cfg: [gcode_macro G29] runs BED_MESH_PROFILE LOAD=bedmag60 (its
    BED_MESH_CALIBRATE line is commented out), so G29 probes nothing on that printer."""
    cfg = need_shared("corpus", "gcode", "printer_configs", "theshamot_klipper_printer.cfg")
    gcode = need_shared("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    base = load_machine("ender3-v2")
    m = machine_from_klipper_config(cfg, base)
    assert m.command_s == (("G29", 0.0),)
    with_cfg = analyze_file(gcode, m, keep_rows=False)
    plain = analyze_file(gcode, base, mode="klipper", keep_rows=False)
    assert any(e.cmd == "G29" for e in analyze_file(gcode, base, mode="klipper").events)
    assert plain.time_by_phase_s["leveling"] == pytest.approx(base.bed_leveling_s)
    assert "leveling" not in with_cfg.time_by_phase_s


def test_probing_macro_keeps_the_levelling_time(tmp_path):
    s = _cfg(tmp_path, "[gcode_macro G29]\ngcode:\n    G28\n    BED_MESH_CALIBRATE\n")
    assert levelling_macros_s(s, 90.0) == {"G29": 90.0}


def test_nested_macros_are_followed(tmp_path):
    s = _cfg(
        tmp_path,
        "[gcode_macro G29]\ngcode:\n    MESH\n"
        "[gcode_macro MESH]\ngcode:\n    Z_TILT_ADJUST\n"
        "[gcode_macro G80]\ngcode:\n    BED_MESH_PROFILE LOAD=default\n",
    )
    assert levelling_macros_s(s, 60.0) == {"G29": 60.0, "G80": 0.0}


def test_templates_and_missing_macros_keep_the_profile_default(tmp_path):
    s = _cfg(
        tmp_path,
        "[gcode_macro G29]\ngcode:\n    {% if printer.bed_mesh.profile_name == '' %}\n"
        "    BED_MESH_CALIBRATE\n    {% endif %}\n",
    )
    assert levelling_macros_s(s, 90.0) == {}  # decided at run time: cannot tell
    assert levelling_macros_s(_cfg(tmp_path, ""), 90.0) == {}
