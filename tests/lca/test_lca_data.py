"""Inventory data: every number sourced, CFs equal to bw2io's CML-IA copy, bad input named."""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path

import pytest

from slicer_energy.errors import ProfileError
from slicer_energy.lca.data import (
    CATEGORIES,
    GWP_SETS,
    PRECHARACTERISED,
    _read_csv,
    load_background,
    load_method,
)
from slicer_energy.lca.scenarios import STUDIES, load_study, study_path
from slicer_energy.resources import data_dir

LCA_DIR = data_dir("lca")


def test_every_number_has_a_source_and_ranges_are_sane():
    db = load_background()
    assert {"electricity:DE", "electricity:CN", "electricity:US", "electricity:NL",
            "electricity:FR", "electricity:EU"} <= set(db.processes)  # fmt: skip
    for key in ("material:pla_virgin", "material:pla_recycled", "material:pa12_powder",
                "material:pc_granulate", "material:aluminium_primary",
                "material:alsi10mg_powder", "fuel:kerosene_combustion"):  # fmt: skip
        assert key in db.processes
    for mode in ("air_freight", "truck_heavy", "van", "ship_container", "rail"):
        assert f"transport:{mode}" in db.processes
    for p in db.processes.values():
        for n in [*p.flows.values(), *p.inputs.values()]:
            assert n.source.strip(), p.key
            if n.low is not None:
                assert n.low <= n.value <= n.high
    for name in STUDIES:
        load_study(name, db)  # parse_num refuses unsourced numbers


def test_missing_is_marked_not_zero():
    db = load_background()
    # every grid's acidification comes from its own SO2/NOx, USLCI, or a proxy that says so
    for g in db.ids("electricity"):
        p = db.processes[f"electricity:{g}"]
        linked = p.uslci is not None and "ap" in p.uslci.categories
        assert linked or ("Sulfur dioxide", "air") in p.flows, g
        assert "ap" not in p.missing, g
        if linked and p.uslci.per_gwp:
            assert p.uslci.proxy and p.uslci.scale.uncertain, g  # a proxy is named and ranged
    # a process must not carry a zero-valued flow for a category it declares missing
    for p in db.processes.values():
        assert set(p.missing) <= set(CATEGORIES)


def _bw2io_cml():
    # Locate bw2io's package data without importing bw2io (its import sets up a Brightway
    # data directory and takes seconds); the file is the independent copy we compare with.
    spec = importlib.util.find_spec("bw2io")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the Brightway extra (bw2io) is not installed")
    zpath = (
        Path(list(spec.submodule_search_locations)[0]) / "data" / "lcia" / "lcia_39_ecoinvent.zip"
    )
    with zipfile.ZipFile(zpath) as z:
        methods = json.loads(z.read("data.json"))
    return {tuple(m["name"]): m for m in methods}


@pytest.mark.parametrize("gwp_set", ["ar5"])
def test_cfs_equal_bw2io_cml_ia_48(gwp_set):
    """Every CF we ship (except the two pseudo-flows) is in bw2io's CML v4.8 2016
    with the same value, in every sub-compartment of its top-level compartment."""
    bw = _bw2io_cml()
    method = load_method(gwp_set)
    checked = 0
    for cat in CATEGORIES:
        name = tuple(method.categories[cat]["bw2io"])
        assert name in bw, name
        theirs: dict[tuple[str, str], set[float]] = {}
        for e in bw[name]["exchanges"]:
            theirs.setdefault((e["name"], e["categories"][0]), set()).add(float(e["amount"]))
        for flow, cf in method.factors[cat].items():
            if flow in (PRECHARACTERISED, ("Energy, fossil", "natural resource")):
                continue  # pseudo-flows: kg CO2-eq as published; CML 2001's fossil energy in MJ
            assert flow in theirs, f"{cat}: {flow} not in bw2io {name}"
            for v in theirs[flow]:
                assert cf.value == pytest.approx(v, rel=1e-9), (cat, flow, v)
            checked += 1
    assert checked >= 20


def test_older_gwp_sets_differ_only_for_non_co2_gases():
    ar5 = load_method("ar5").factors["gwp100"]
    for s in GWP_SETS:
        f = load_method(s).factors["gwp100"]
        assert f[("Carbon dioxide, fossil", "air")].value == 1.0
        assert set(f) == set(ar5)
    assert load_method("ar4").factors["gwp100"][("Methane, fossil", "air")].value == 25
    assert load_method("tar").factors["gwp100"][("Dinitrogen monoxide", "air")].value == 296
    with pytest.raises(ProfileError, match="unknown GWP set"):
        load_method("sar")


def test_cf_csv_rows_have_sources():
    for f in ("cml-ia-4.8.csv", "gwp-sets.csv"):
        for row in _read_csv(LCA_DIR / "methods" / f):
            assert row["source"].strip() and float(row["cf"]) >= 0


# ------------------------------------------------------------------ bad input


def _broken(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = study_path("phone-case").read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / "broken.toml"
    p.write_text(text.replace(old, new, count), encoding="utf-8")
    return p


def test_unknown_transport_mode_named(tmp_path):
    p = _broken(tmp_path, 'mode = "rail"', 'mode = "hovercraft"')
    with pytest.raises(ProfileError) as e:
        load_study(str(p), load_background())
    msg = str(e.value)
    assert str(p) in msg and "scenario H5" in msg and "transport[0].mode" in msg
    assert "hovercraft" in msg and "rail" in msg  # says what is known


def test_negative_distance_named(tmp_path):
    p = _broken(tmp_path, "distance_km = { value = 200,", "distance_km = { value = -200,")
    with pytest.raises(ProfileError, match=re.escape(f"{p}: scenario H1: transport[0]")) as e:
        load_study(str(p), load_background())
    assert "negative" in str(e.value)


def test_missing_factor_named(tmp_path):
    p = _broken(tmp_path, "distance_km = { value = 48, source = ", "note = { x = 1, source = ")
    with pytest.raises(ProfileError) as e:
        load_study(str(p), load_background())
    assert (
        str(p) in str(e.value) and "distance_km" in str(e.value) and "scenario H1" in str(e.value)
    )


def test_factor_without_value_or_source_named(tmp_path):
    p = _broken(tmp_path, 'process_waste_share = { value = 0.2, low = 0.0, high = 0.33, source',
                'process_waste_share = { low = 0.0, high = 0.33, source')  # fmt: skip
    with pytest.raises(ProfileError, match="process_waste_share has no 'value'"):
        load_study(str(p), load_background())
    p = _broken(tmp_path, "[part]\n", "[part]\nextra_kg = 3\n")
    with pytest.raises(ProfileError, match=r"\[part\]: unknown key\(s\) extra_kg"):
        load_study(str(p), load_background())
    text = study_path("phone-case").read_text(encoding="utf-8")
    old = re.search(r"distance_km = \{ value = 48, source = [^\n]*\}", text).group(0)
    p = _broken(tmp_path, old, "distance_km = 48")
    with pytest.raises(ProfileError, match=r"transport\[2\]: distance_km = 48 has no source"):
        load_study(str(p), load_background())


def test_unknown_grid_and_material_named(tmp_path):
    p = _broken(tmp_path, 'grid = "CN-South"', 'grid = "Atlantis"')
    with pytest.raises(ProfileError, match="scenario H1: grid: unknown electricity"):
        load_study(str(p), load_background())
    p = _broken(tmp_path, 'material = "pa12_powder"', 'material = "unobtainium"')
    with pytest.raises(ProfileError, match="unknown material 'material:unobtainium'"):
        load_study(str(p), load_background())
