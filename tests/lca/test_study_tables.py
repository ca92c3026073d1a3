"""Verdict logic on constructed intervals, profile ranges, and the generated tables of
docs/lca.md and docs/sintering.md."""

from __future__ import annotations

import importlib.util

import pytest

from slicer_energy.errors import ProfileError
from slicer_energy.lca.findings import (
    CONTRADICTED,
    REPRODUCED,
    UNDETERMINED,
    aircraft_findings,
    all_of,
    verdict,
)
from slicer_energy.machine import load_machine as load_fdm
from slicer_energy.profiles import load_sourced_toml
from slicer_energy.sintering.machine import load_machine

from conftest import REPO


def test_verdict_follows_the_interval():
    assert verdict(45, 80, 40, 90) == REPRODUCED
    assert verdict(35, 80, 40, 90) == UNDETERMINED  # the interval straddles the low edge
    assert verdict(95, 120, 40, 90) == CONTRADICTED
    assert verdict(1.6, 2.7, 1.5) == REPRODUCED and verdict(1.2, 2.7, 1.5) == UNDETERMINED
    assert verdict(0.2, 0.4, hi=0.1) == CONTRADICTED
    assert all_of([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert all_of([REPRODUCED, UNDETERMINED]) == UNDETERMINED
    assert all_of([UNDETERMINED, CONTRADICTED]) == CONTRADICTED


def _fz4_stats(fmin: tuple[float, float], fmax: tuple[float, float]) -> dict:
    def iv(lo: float, hi: float) -> dict:
        return {"median": (lo + hi) / 2, "p05": lo, "p95": hi, "nominal": hi}

    st = {
        "fz4_use_phase_factor_min": iv(*fmin),
        "fz4_use_phase_factor_max": iv(*fmax),
        "fz4_saved_gwp": iv(4000, 4740),
        "fz1_material_share": iv(0.6, 0.8),
        "fz1_air_freight_share": iv(0.1, 0.2),
        "fz1_material_lead": iv(0.2, 0.5),
        "FZ2-min_processing_lead": iv(-0.1, 0.3),
    }
    for k in ("production_gwp", "mls_kwh_per_kg"):
        st[f"fz4_{k}_min"] = st[f"fz4_{k}_max"] = iv(30, 60)
    return st


def test_fz4_verdict_flips_with_a_constructed_interval():
    def fz4(fmin, fmax):
        return aircraft_findings(_fz4_stats(fmin, fmax))[0]["verdict"]

    assert fz4((45, 85), (41, 70)) == REPRODUCED
    assert fz4((70, 121), (33, 56)) == UNDETERMINED  # Min above, Max below: straddles 40-90
    assert fz4((101, 178), (95, 123)) == CONTRADICTED
    found = aircraft_findings(_fz4_stats((45, 85), (41, 70)))
    assert found[2]["verdict"] == UNDETERMINED  # processing lead -0.1..0.3 straddles 0
    assert "64-103" not in found[0]["why"]  # only the run's numbers: 30 (30-60) kWh/kg here
    assert "45 (30-60) kWh/kg" in found[0]["why"]


def test_machine_ranges_are_loaded_and_bracket_the_value(tmp_path):
    sls = load_machine("eosint-p390", "sls")
    for key in ("power.heaters_build_w", "power.laser_efficiency", "phases.warmup_s"):
        lo, hi = sls.ranges[key]
        table, name = key.split(".")
        assert lo < getattr(sls, table)[name] < hi
    drawn = sls.with_numbers({"power.heaters_build_w": 1000.0})
    assert drawn.power["heaters_build_w"] == 1000.0 and sls.power["heaters_build_w"] == 1800.0
    mk3s = load_fdm("prusa-mk3s")
    assert set(mk3s.ranges) >= {"bed.p_max_w", "electrical.psu_efficiency"}
    bed = mk3s.with_numbers({"bed.p_max_w": 200.0}).bed
    # R and C are derived from the assumed wattage: the measured gain and time constant hold
    assert bed.p_max_w * bed.r_k_per_w == pytest.approx(mk3s.bed.p_max_w * mk3s.bed.r_k_per_w)
    assert bed.tau_s == pytest.approx(mk3s.bed.tau_s)
    bad = tmp_path / "bad.toml"
    bad.write_text('[power]\nx_w = { value = 5, low = 6, high = 9, source = "assumption: t" }\n')
    with pytest.raises(ProfileError, match=r"bad.toml: power.x_w needs low <= value <= high"):
        load_sourced_toml(bad)


def _study_tables():
    spec = importlib.util.spec_from_file_location(
        "study_tables", REPO / "benchmarks" / "study_tables.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_readme_tables_are_what_the_script_writes(capsys):
    """Staleness only (accuracy comes from the references): claim, verdict and LCA tables;
    the sintering tables too where ../shared is present."""
    assert _study_tables().main(["--check"]) == 0, capsys.readouterr().out
