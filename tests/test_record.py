"""One record everywhere (issue 18 items 1, 4, 6): every command's --json validates against
the shipped schema, a part and PrusaSlicer's G-code of it give the same keys, cost and CO2e
on every process, the user's config file, and options that are never prefix-matched."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import trimesh

from slicer_energy.cli import main

from conftest import CORPUS, SHARED, check_record, need_shared

CUBE_11M = ("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """A 20 × 20 × 5 mm box: an FDM prediction of it takes well under a second."""
    p = tmp_path_factory.mktemp("parts") / "box.stl"
    trimesh.creation.box((20, 20, 5)).apply_translation((0, 0, 2.5)).export(p)
    return str(p)


def _json(capsys, argv: list[str]):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _keys(rec: dict, prefix: str = "") -> set[str]:
    """Every key path of a record, minus the free-form parts (settings, provenance, the
    model's internals) and the names inside per-phase/component/feature maps."""
    out = set()
    for k, v in rec.items():
        path = f"{prefix}{k}"
        out.add(path)
        free = k in ("settings", "provenance", "model", "gcode") or k.startswith("by_")
        if isinstance(v, dict) and not free and k != "filament_by_feature_mm":
            out |= _keys(v, path + ".")
    return out


def test_every_command_json_validates(box, capsys):
    recs = [
        _json(capsys, ["predict", box, "--json"]),
        _json(capsys, ["predict", box, "--process", "sls", "--copies", "3", "--json"]),
        _json(capsys, ["predict", box, "--process", "mls", "--json"]),
        _json(capsys, ["gcode", str(need_shared(*CUBE_11M)), "--printer", "ender3-v2", "--json"]),
        *_json(capsys, ["compare", box, "--json"]),
    ]
    assert {r["process"] for r in recs} == {"fdm", "sls", "mls", "injection-moulding", "casting"}
    for r in recs:
        check_record(r)
        assert r["schema_version"] == 1
        if r["by_phase_kwh"]:  # the phases and components add up to the whole, in kWh
            assert sum(r["by_phase_kwh"].values()) == pytest.approx(r["energy_kwh"])
            assert sum(r["by_component_kwh"].values()) == pytest.approx(r["energy_kwh"])
            assert sum(r["by_phase_s"].values()) == pytest.approx(r["time_s"], rel=1e-6)
    casting = next(r for r in recs if r["process"] == "casting")
    assert casting["baseline"]["by_step_kwh"]["melting"] > 0
    assert casting["fdm"] is None and casting["sintering"] is None


def test_schema_refuses_what_it_should(box, capsys):
    """The schema is not a rubber stamp: a kWh map in seconds' place, a phase name of one
    model only, a missing key each fail."""
    import jsonschema

    rec = check_record(_json(capsys, ["predict", box, "--json"]))
    for bad in (
        {**rec, "by_phase_kwh": {"motion": 0.1}},
        {**rec, "filament_m": 1.2},
        {k: v for k, v in rec.items() if k != "machine"},
        {**rec, "by_component_kwh": {"hotend_heater": 0.1}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check_record(bad)


@pytest.mark.skipif(shutil.which("prusa-slicer") is None, reason="prusa-slicer not installed")
def test_part_and_its_gcode_give_the_same_record(tmp_path, capsys):
    """predict on a part and gcode on PrusaSlicer's G-code of it (sliced here, MK3S PLA
    0.20 mm profile): the same keys, the same phase and component names, and numbers
    that agree (the FDM model is within ±10 % of PrusaSlicer, docs/fdm.md)."""
    from slicer_energy.fdm import prusaslicer

    ini = need_shared("reference", "prusaslicer", "mk3s_pla_020.ini")
    stl = CORPUS / "stl" / "calibration_cube_nmgrl.stl"
    if not stl.exists():
        pytest.skip(f"{stl} not found")
    gcode = tmp_path / "cube.gcode"
    prusaslicer.slice_stl(stl, ini, gcode)
    part = check_record(_json(capsys, ["predict", str(stl), "--json"]))
    file = check_record(_json(capsys, ["gcode", str(gcode), "--json"]))
    assert _keys(part) == _keys(file)
    assert set(part["by_phase_kwh"]) == set(file["by_phase_kwh"])
    assert set(part["by_component_kwh"]) == set(file["by_component_kwh"])
    assert part["fdm"]["gcode"] is None and file["fdm"]["model"] is None
    for key in ("time_s", "print_time_s", "energy_kwh", "filament_mm", "material_g"):
        assert part[key] == pytest.approx(file[key], rel=0.10), key


def test_cost_and_co2_on_every_process(box, capsys):
    """--price-per-kwh on SLS was ignored and --grid DE was prefix-matched to another option
    (issue 18); DE is UBA's 2023 mix, 380 g CO2/kWh (Climate Change 23/2024)."""
    argv = ["--price-per-kwh", "0.25", "--currency", "EUR", "--grid", "DE", "--json"]
    for proc in ("fdm", "sls", "mls"):
        rec = _json(capsys, ["predict", box, "--process", proc, *argv])
        assert rec["cost"]["total"] == pytest.approx(0.25 * rec["energy_kwh"]), proc
        assert rec["cost"]["currency"] == "EUR"
        assert rec["grid"] == {"id": "DE", "gco2_per_kwh": pytest.approx(380.0)}
        assert rec["co2_kg"] == pytest.approx(0.380 * rec["energy_kwh"]), proc
    fdm = _json(
        capsys, ["predict", box, "--filament-price-per-kg", "20", "--grid", "100", "--json"]
    )
    # 1.75 mm PLA at 1.24 g/cm³ (NatureWorks Ingeo 4043D data sheet), 20 per kg
    grams = fdm["filament_mm"] * math.pi * 1.75**2 / 4 * 1.24e-3
    assert fdm["cost"]["filament"] == pytest.approx(grams / 1000 * 20, rel=0.01)
    assert fdm["cost"]["electricity"] is None and fdm["grid"]["id"] is None
    g = need_shared(*CUBE_11M)
    rec = _json(capsys, ["gcode", str(g), "--price-per-kwh", "0.4", "--grid", "FR", "--json"])
    assert rec["cost"]["total"] == pytest.approx(0.4 * rec["energy_kwh"])
    rows = _json(capsys, ["compare", box, "--grid", "200", "--json"])
    casting = next(r for r in rows if r["process"] == "casting")
    fuel = sum(casting["baseline"]["fuels_kwh"].values())  # melting's gas is not on the grid
    assert casting["co2_kg"] == pytest.approx(0.2 * (casting["energy_kwh"] - fuel))


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["predict", "phone_case", "--gri", "DE"], "unrecognized arguments: --gri"),
        (["gcode", "x.gcode", "--price-per", "0.3"], "unrecognized arguments: --price-per"),
        (["predict", "phone_case", "--grid", "Atlantis"], "--grid: unknown electricity mix"),
        (["predict", "phone_case", "--price-per-kwh", "-1"], "expected a finite number >= 0"),
        # the serial port is --port; --printer is always a machine profile
        (["rig", "log", "--printer", "/dev/null", "--no-meter"], "required: --port"),
    ],
)
def test_options_are_exact_and_errors_one_line(argv, expect, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and err.count("\n") == 1, err


def test_config_file_sets_defaults_options_win(box, tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        'printer = "ender3-v2"\nprice_per_kwh = 0.3\ncurrency = "EUR"\n'
        'filament_price_per_kg = 25\ngrid = "FR"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SLICER_ENERGY_CONFIG", str(cfg))
    rec = _json(capsys, ["predict", box, "--json"])
    assert rec["machine"] == "ender3-v2"
    assert rec["cost"]["price_per_kwh"] == 0.3 and rec["cost"]["filament_price_per_kg"] == 25
    assert rec["cost"]["currency"] == "EUR" and rec["grid"]["id"] == "FR"
    rec = _json(capsys, ["predict", box, "--printer", "prusa-mk3s", "--grid", "500", "--json"])
    assert rec["machine"] == "prusa-mk3s" and rec["grid"] == {"id": None, "gco2_per_kwh": 500}
    gc = _json(capsys, ["gcode", str(need_shared(*CUBE_11M)), "--json"])
    assert gc["machine"] == "ender3-v2" and gc["cost"]["currency"] == "EUR"


@pytest.mark.parametrize(
    "text, expect",
    [
        ("price_per_kwh = 'cheap'\n", "key 'price_per_kwh': expected a number >= 0"),
        ("price = 0.3\n", "unknown key 'price'; known keys: printer, price_per_kwh"),
        ("grid = 'Atlantis'\n", "key 'grid': unknown electricity mix 'Atlantis'"),
        ("grid = -5\n", "key 'grid': expected a number >= 0"),
        ("printer = [1]\n", "key 'printer': expected a non-empty string"),
        ("price_per_kwh = \n", "not valid TOML"),
        (None, "config file not found (named by $SLICER_ENERGY_CONFIG)"),
    ],
)
def test_config_errors_name_file_and_key(box, tmp_path, monkeypatch, capsys, text, expect):
    cfg = tmp_path / "config.toml"
    if text is not None:
        cfg.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SLICER_ENERGY_CONFIG", str(cfg))
    assert main(["predict", box]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slicer-energy: error: {cfg}") and expect in err, err
    assert err.count("\n") == 1


def test_config_path_is_the_platform_config_dir(monkeypatch):
    from platformdirs import user_config_dir

    from slicer_energy.userconfig import config_path, load_user_config

    monkeypatch.delenv("SLICER_ENERGY_CONFIG")
    assert config_path() == Path(user_config_dir("slicer-energy")) / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(SHARED / "no-such-dir"))
    assert load_user_config().price_per_kwh is None  # absent at the default place: no defaults


def test_tables_show_hms_and_kwh(box, capsys):
    assert main(["gcode", str(need_shared(*CUBE_11M)), "--printer", "ender3-v2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"phase\s+h:mm:ss\s+kWh", out) and re.search(r"\b0:\d\d:\d\d\b", out)
    assert "Wh" not in out.replace("kWh", "")
    assert main(["predict", box, "--process", "sls", "--price-per-kwh", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "job h:mm:ss" in out and "cost" in out and re.search(r"\b\d+:\d\d:\d\d\b", out)
