"""``lca --part``: print it at home or buy it, for the user's own part (issue 18 item 7).

The home scenario's energy is what ``predict PART --printer ...`` says; each scenario's
material is the part itself (filament by length x cross-section x the filament's sourced
density; moulded and sintered parts by volume x the material's density); the home grid is
the one asked for and everything else stays the phone-case study's.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
from test_guards import cli

from slicer_energy.cli import main
from slicer_energy.lca.data import load_background
from slicer_energy.lca.scenarios import load_study
from slicer_energy.samples import resolve_part

from conftest import need_shared

# Sourced densities (g/cm3): Ingeo 4043D 1.24 (the Ender-3 V2 profile's filament, its TDS),
# PA 2200 0.93 (EOS SDS); moulded PC 1.20 (the moulding profile's stated assumption).
PLA, PA12, PC = 1.24, 0.93, 1.20
FILAMENT_MM = 1.75  # Ender-3 V2, Configuration.h DEFAULT_NOMINAL_FILAMENT_DIA
DE_KG_CO2_PER_KWH = 0.380  # UBA Strommix 2023, lca/background/electricity.toml
FR_KG_CO2E_PER_KWH = 0.041  # Ember via OWID, lca/background/electricity.toml


def _json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module", params=["phone_case", "corpus_cube"])
def part(request) -> str:
    if request.param == "phone_case":
        return "phone_case"
    return str(need_shared("corpus", "stl", "calibration_cube_nmgrl.stl"))


@pytest.fixture(scope="module")
def docs(part) -> tuple[dict, dict]:
    """(lca --part --json, predict --json) for ``part`` on an Ender-3 V2 in Germany (module
    scope, so stdout is captured here rather than by capsys)."""
    out = {}
    for key, argv in (
        ("lca", ["lca", "--part", part, "--printer", "ender3-v2", "--grid", "DE", "--json"]),
        ("predict", ["predict", part, "--printer", "ender3-v2", "--json"]),
    ):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(argv) == 0
        out[key] = json.loads(buf.getvalue())
    return out["lca"], out["predict"]


def test_home_energy_is_predicts_and_on_the_asked_grid(docs):
    doc, rec = docs
    home = doc["scenarios"]["print-at-home"]
    (step,) = home["processing_steps"]
    assert step["basis"] == "model" and step["machine"] == "ender3-v2"
    assert step["energy_kwh"] == pytest.approx(rec["energy_kwh"], rel=1e-9)
    assert step["grid"] == home["grid"] == "DE"
    gwp = home["categories"]["gwp100_kg_co2eq"]["by_stage"]["processing"]
    assert gwp == pytest.approx(rec["energy_kwh"] * DE_KG_CO2_PER_KWH, rel=1e-6)


def test_each_scenario_books_the_part_itself(docs, part):
    doc, rec = docs
    s = doc["scenarios"]
    # FDM: all filament bought = the part + support/skirt = length x area x density
    area_cm2 = math.pi * (FILAMENT_MM / 2) ** 2 / 100.0
    fil_g = rec["filament_mm"] / 10.0 * area_cm2 * PLA
    home = s["print-at-home"]["part"]
    assert (home["part_kg"] + home["process_waste_kg"]) * 1000 == pytest.approx(fil_g, rel=1e-6)
    assert home["part_kg"] * 1000 <= rec["material_g"]
    volume_cm3 = resolve_part(part).volume_mm3 / 1000.0
    assert s["buy-moulded"]["part"]["part_kg"] * 1000 == pytest.approx(volume_cm3 * PC, rel=0.01)
    for sid in ("buy-sls-shipped", "buy-sls-local"):
        assert s[sid]["part"]["part_kg"] * 1000 == pytest.approx(volume_cm3 * PA12, rel=0.01)
    for sc in s.values():  # what is bought leaves at end of life
        assert sc["mass_balance_kg"]["in"] == pytest.approx(sc["mass_balance_kg"]["out"])


def test_the_rest_is_the_studys_and_the_report_says_which(docs):
    doc, _ = docs
    db = load_background()
    study = load_study("phone-case", db)
    pairs = {"print-at-home": "H5-A", "buy-moulded": "H1", "buy-sls-shipped": "H3-30",
             "buy-sls-local": "H4-30"}  # fmt: skip
    assert list(doc["scenarios"]) == list(pairs)
    for new, old in pairs.items():
        sc = doc["scenarios"][new]
        orig = study.get(old)
        if new != "print-at-home":
            assert sc["grid"] == orig.grid
        assert sc["processing_steps"][0]["process"] == orig.processing[0].process
        assert old in sc["label"]
        for k in ("gwp100_kg_co2eq", "adp_kg_sb_eq", "htp_kg_14dcb_eq", "ap_kg_so2_eq"):
            assert sc[k] is not None and sc[k] > 0
    assert doc["study"] == "print-or-buy" and doc["energy_mode"] == "model"
    assert set(doc["inputs"]) == {"from_part", "from_options", "from_study"}
    assert "ender3-v2" in " ".join(doc["inputs"]["from_options"])
    assert "phone-case.toml" in " ".join(doc["inputs"]["from_study"])


def test_grid_moves_only_home_printing(capsys):
    de = _json(capsys, "lca", "--part", "phone_case", "--printer", "ender3-v2", "--json")
    fr = _json(capsys, "lca", "--part", "phone_case", "--printer", "ender3-v2", "--grid", "FR",
               "--json")  # fmt: skip
    assert de["scenarios"]["print-at-home"]["grid"] == "DE"  # the study's, none configured
    home = fr["scenarios"]["print-at-home"]
    kwh = home["processing_energy_kwh"]
    gwp = home["categories"]["gwp100_kg_co2eq"]["by_stage"]["processing"]
    assert gwp == pytest.approx(kwh * FR_KG_CO2E_PER_KWH, rel=1e-6)
    for sid in ("buy-moulded", "buy-sls-shipped", "buy-sls-local"):
        assert fr["scenarios"][sid]["gwp100_kg_co2eq"] == de["scenarios"][sid]["gwp100_kg_co2eq"]


def test_text_report_names_inputs(capsys):
    assert main(["lca", "--part", "phone_case", "--printer", "ender3-v2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Print it or buy it: phone_case")
    for needle in ("from part:", "from options:", "from study:", "print-at-home", "buy-moulded"):
        assert needle in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["lca", "phone-case", "--part", "phone_case"], "not both"),
        (["lca"], "--part"),
        (["lca", "--part", "phone_case", "--energy", "pinned"], "--energy pinned"),
        (["lca", "--part", "phone_case", "--grid", "ATLANTIS"], "ATLANTIS"),
        (["lca", "--part", "nothere.stl"], "nothere.stl"),
        (["lca", "phone-case", "--printer", "ender3-v2"], "--printer"),
        (["lca", "--part", "phone_case", "--printer", "nothere-printer"], "nothere-printer"),
    ],
)
def test_errors_are_one_line(capsys, argv, needle):
    assert needle in cli(capsys, *argv)


@pytest.mark.parametrize(("value", "home"), [('"FR"', "FR"), ("120", "DE")])
def test_home_grid_from_the_config_file_when_it_names_a_mix(tmp_path, monkeypatch, capsys,
                                                           value, home):  # fmt: skip
    """A maker sets the grid once; a number (g/kWh) names no mix, so the study's DE holds."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'printer = "ender3-v2"\ngrid = {value}\n', encoding="utf-8")
    monkeypatch.setenv("SLICER_ENERGY_CONFIG", str(cfg))
    doc = _json(capsys, "lca", "--part", "phone_case", "--json")
    assert doc["scenarios"]["print-at-home"]["grid"] == home
    assert doc["scenarios"]["print-at-home"]["processing_steps"][0]["machine"] == "ender3-v2"
    where = " ".join(doc["inputs"]["from_options"])
    assert (str(cfg) in where) == (home == "FR")
