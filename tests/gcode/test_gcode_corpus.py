"""Every real G-code file in ../shared/corpus parses and plans; Klipper timing vs measured."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.klipper_config import machine_from_klipper_config, parse_klipper_cfg
from slicer_energy.machine import load_machine

from conftest import CORPUS, REPO, need_shared

FILES = sorted((CORPUS / "gcode").glob("*.gcode.gz")) if (CORPUS / "gcode").exists() else []


@pytest.mark.skipif(not FILES, reason="../shared/corpus/gcode not found")
@pytest.mark.parametrize(
    "path", FILES, ids=[p.name.split("__")[0] + "/" + p.name[-40:] for p in FILES]
)
def test_corpus_file_parses_and_plans(path):
    res = analyze_file(path, load_machine("ender3-v2"), mode="marlin", keep_rows=False)
    assert res.n_moves > 1000
    assert res.print_time_s > 60
    assert res.energy_j > 0 and res.filament_mm > 100
    # the slicer's own estimate, where written, is within a factor 2 of our motion time
    # (not for the Voron speed benchy: 15-16k mm/s² accelerations, not an Ender-3)
    if res.slicer_estimate_s and not path.name.startswith("jdkd44"):
        assert 0.5 < res.print_time_s / res.slicer_estimate_s < 2.0


def test_klipper_config_reads_limits():
    cfg = need_shared("corpus", "gcode", "printer_configs", "theshamot_klipper_printer.cfg")
    sec = parse_klipper_cfg(cfg)
    assert sec["printer"]["max_accel"] == "2000"
    m = machine_from_klipper_config(cfg, load_machine("ender3-v2"))
    k = m.kinematics
    assert m.firmware == "klipper"
    assert k.klipper_max_accel_mm_s2 == 2000 and k.klipper_max_velocity_mm_s == 1000
    assert k.klipper_minimum_cruise_ratio == pytest.approx(1 - 1500 / 2000)
    assert k.klipper_max_z_velocity_mm_s == 5


@pytest.mark.slow
def test_klipper_times_beat_the_slicer_on_measured_prints():
    """Median |error| against the host-measured print time must beat PrusaSlicer 2.3's."""
    need_shared("corpus", "gcode", "printer_configs", "theshamot_klipper_printer.cfg")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gcode_measured import measured_table

    rows = measured_table(Path(CORPUS).parent)
    assert len(rows) >= 15
    ours = statistics.median(abs(t - m) / m for _, t, _, _, m in rows)
    slicer = statistics.median(abs(e - m) / m for _, _, _, e, m in rows)
    motion = statistics.median(abs(pt - m) / m for _, _, pt, _, m in rows)
    assert ours < slicer and motion < slicer
    assert ours < 0.06
