"""PRINT_START / PRINT_END: the printer.cfg macro's heat-up, homing and levelling count."""

from __future__ import annotations

import pytest

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.klipper_config import machine_from_klipper_config
from slicer_energy.gcode.klipper_macros import Macro, MacroUnrenderable, _substitute, expand
from slicer_energy.machine import load_machine

from conftest import need_shared

PRINTER = "[printer]\nkinematics: cartesian\nmax_velocity: 300\nmax_accel: 3000\n"
MOVES = "G1 X10 Y10 F3000\nG1 X20 E1\n"


def _machine(tmp_path, macros: str):
    p = tmp_path / "printer.cfg"
    p.write_text(PRINTER + macros)
    return machine_from_klipper_config(p, load_machine("ender3-v2"))


def _run(tmp_path, m, gcode: str):
    g = tmp_path / "p.gcode"
    g.write_text(gcode)
    return analyze_file(g, m, keep_rows=False)


def test_macro_body_heats_to_the_call_targets(tmp_path):
    """Bed wait from ambient to BED, then hotend from ambient to EXTRUDER: the heater
    model's own times to reach the targets (no calibrated residency on a shipped profile)."""
    m = _machine(
        tmp_path,
        "[gcode_macro PRINT_START]\ngcode:\n"
        "    {% set bed = params.BED|default(60)|float %}\n"
        "    M190 S{bed}\n    G28\n    BED_MESH_CALIBRATE\n"
        "    M109 S{params.EXTRUDER|float}\n",
    )
    r = _run(tmp_path, m, "PRINT_START BED=70 EXTRUDER=215\n" + MOVES)
    want = m.bed.time_to_reach_s(m.bed.t_amb_c, 70) + m.hotend.time_to_reach_s(
        m.hotend.t_amb_c, 215
    )
    assert m.wait_extra_s == 0
    assert r.time_by_phase_s["wait"] == pytest.approx(want, rel=1e-9)
    assert r.time_by_phase_s["homing"] == pytest.approx(m.homing_s)
    assert r.time_by_phase_s["leveling"] == pytest.approx(m.bed_leveling_s)
    assert not any("PRINT_START" in w for w in r.warnings)


def test_without_config_the_conventional_body_is_assumed_and_said(tmp_path):
    m = load_machine("ender3-v2")
    r = _run(tmp_path, m, "START_PRINT BED_TEMP=60 EXTRUDER_TEMP=200\n" + MOVES + "PRINT_END\n")
    want = m.bed.time_to_reach_s(m.bed.t_amb_c, 60) + m.hotend.time_to_reach_s(
        m.hotend.t_amb_c, 200
    )
    assert r.time_by_phase_s["wait"] == pytest.approx(want + 2 * m.wait_extra_s, rel=1e-9)
    assert r.time_by_phase_s["homing"] == pytest.approx(m.homing_s)
    assert any("START_PRINT" in w and "assumed" in w for w in r.warnings)
    assert "START_PRINT" not in r.unknown_commands


def test_nested_and_klipper_heater_commands(tmp_path):
    m = _machine(
        tmp_path,
        "[gcode_macro PRINT_START]\ngcode:\n    HEAT T={params.T}\n"
        "[gcode_macro HEAT]\ngcode:\n"
        "    SET_HEATER_TEMPERATURE HEATER=extruder TARGET={params.T}\n"
        "    TEMPERATURE_WAIT SENSOR=extruder MINIMUM={params.T|float - 10}\n",
    )
    r = _run(tmp_path, m, "PRINT_START T=200\n" + MOVES)
    want = m.hotend.time_to_reach_s(m.hotend.t_amb_c, 190)
    assert r.time_by_phase_s["wait"] == pytest.approx(want, rel=1e-9)


def test_runtime_state_falls_back_to_the_assumption(tmp_path):
    m = _machine(
        tmp_path,
        "[gcode_macro PRINT_START]\ngcode:\n    G1 X{printer.toolhead.position.x + 5}\n",
    )
    r = _run(tmp_path, m, "PRINT_START BED=50\n" + MOVES)
    assert r.time_by_phase_s["wait"] == pytest.approx(
        m.bed.time_to_reach_s(m.bed.t_amb_c, 50), rel=1e-9
    )
    assert any("run-time state" in w for w in r.warnings)


def test_substitution_without_jinja():
    body = "{% set b = params.BED|default(55)|float %}\nM190 S{b}\nM109 S{params.HOTEND|int}"
    assert _substitute(body, {"HOTEND": "210.4"}, {}) == "M190 S55.0\nM109 S210"
    with pytest.raises(MacroUnrenderable):
        _substitute("{% if params.X %}G28{% endif %}", {}, {})
    macros = {"PRINT_START": Macro("PRINT_START", body)}
    assert expand("PRINT_START", {"HOTEND": "200"}, macros, []) == ["M190 S55.0", "M109 S200"]


def test_corpus_klipper_config_print_start(tmp_path):
    """ianryeng's Voron (config dumped in its klippy.log): PRINT_START waits for the bed at
    BED_TEMP, preheats the hotend to 150 °C, levels (G32 homes), then heats to
    EXTRUDER_TEMP; the hotend's two waits add up to one from ambient."""
    log = need_shared("corpus", "power", "klippy_logs", "ianryeng_corexy_klippy.log")
    text = log.read_text(encoding="utf-8", errors="replace")
    cfg = text.split("===== Config file =====\n", 1)[1].split("\n=======================", 1)[0]
    (tmp_path / "voron.cfg").write_text(cfg)
    m = machine_from_klipper_config(tmp_path / "voron.cfg", load_machine("ender3-v2"))
    r = _run(tmp_path, m, "PRINT_START BED_TEMP=100 EXTRUDER_TEMP=240\n" + MOVES)
    want = m.bed.time_to_reach_s(m.bed.t_amb_c, 100) + m.hotend.time_to_reach_s(
        m.hotend.t_amb_c, 240
    )
    assert r.time_by_phase_s["wait"] == pytest.approx(want, rel=1e-6)
    assert r.time_by_phase_s["homing"] > 0
    assert r.time_by_phase_s["leveling"] == pytest.approx(m.bed_leveling_s)
