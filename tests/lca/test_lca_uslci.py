"""USLCI background: our reader + engine against bw2calc, regeneration, every category filled.

bw2calc (Brightway's solver) is the independent reference: it gets the same technosphere,
biosphere and characterisation data through bw_processing and must give the same cradle-to-gate
inventories and CML-IA scores. Tests that need ../shared or bw2io skip cleanly without them;
the CLI tests run on the shipped lca/background/uslci.csv alone.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings

import numpy as np
import pytest

from slicer_energy.lca.data import CATEGORIES, load_background
from slicer_energy.resources import data_dir

from conftest import SHARED

ZIP = SHARED / "data" / "uslci" / "uslci_olca1_5_0_json_ld.zip"
PROCESSES = (
    "Electricity, at Grid, US, 2010",
    "Transport, combination truck, diesel powered",
    "Polylactide Biopolymer Resin, at plant",
)
KEYS = ("gwp100_kg_co2eq", "adp_kg_sb_eq", "htp_kg_14dcb_eq", "ap_kg_so2_eq")


def _need(*mods: str) -> None:
    if not ZIP.is_file():
        pytest.skip(f"{ZIP} not present (../shared absent)")
    for m in mods:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} not installed")


@pytest.fixture(scope="module")
def uslci():
    _need("bw2io")
    from slicer_energy.lca.cml import load_factors, load_mapping
    from slicer_energy.lca.uslci import Solver, read_uslci

    db = read_uslci(ZIP)
    return db, Solver(db), load_factors(), load_mapping()


def _bw2calc_scores(solver, db, factors, mapping, name):
    """Inventory and per-category scores of one process computed by bw2calc."""
    import bw_processing as bwp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import bw2calc as bc
    from slicer_energy.lca.cml import _cf, link

    system = solver.m.system
    n = len(system.activities)
    flow_ids = solver.flow_ids
    fidx = {f: n + 1 + i for i, f in enumerate(flow_ids)}
    dp = bwp.create_datapackage()
    t_idx = np.array([(r + 1, c + 1) for r, c, _ in system.technosphere], dtype=bwp.INDICES_DTYPE)
    t_val = np.array([v for _, _, v in system.technosphere])
    dp.add_persistent_vector(matrix="technosphere_matrix", indices_array=t_idx,
                             data_array=t_val, flip_array=np.zeros(len(t_val), bool))  # fmt: skip
    b_idx = np.array([(fidx[f[0]], c + 1) for f, c, _ in system.biosphere], dtype=bwp.INDICES_DTYPE)
    dp.add_persistent_vector(matrix="biosphere_matrix", indices_array=b_idx,
                             data_array=np.array([v for _, _, v in system.biosphere]))  # fmt: skip
    proc = db.by_name(name)
    j = solver.m.column[proc.id] + 1
    out = {}
    for cat in CATEGORIES:
        cf = {}
        for fid in flow_ids:
            lk = link(db.flows[fid], mapping)
            v = _cf(factors, cat, lk)
            if v:
                cf[fidx[fid]] = v * lk.factor
        cdp = bwp.create_datapackage()
        cdp.add_persistent_vector(
            matrix="characterization_matrix",
            indices_array=np.array([(k, k) for k in cf], dtype=bwp.INDICES_DTYPE),
            data_array=np.array(list(cf.values())),
        )
        lca = bc.LCA({j: proc.ref_amount / proc.ref_written}, data_objs=[dp, cdp])
        lca.lci()
        lca.lcia()
        out[cat] = float(lca.score)
    inv = np.asarray(lca.inventory.sum(axis=1)).ravel()
    rows = {v: k for k, v in lca.dicts.biosphere.items()}
    inventory = {flow_ids[rows[i] - n - 1]: float(x) for i, x in enumerate(inv) if x}
    return inventory, out


@pytest.mark.parametrize("name", PROCESSES)
def test_inventory_and_scores_equal_bw2calc(uslci, name):
    _need("bw2calc", "bw_processing")
    from slicer_energy.lca.cml import characterise

    db, solver, factors, mapping = uslci
    ours_inv = solver.inventory(db.by_name(name).id)
    theirs_inv, theirs = _bw2calc_scores(solver, db, factors, mapping, name)
    assert len(ours_inv) > 5
    tiny = 1e-9 * max(abs(v) for v in ours_inv.values())  # bw2calc stores 32-bit floats
    for fid in set(theirs_inv) | set(ours_inv):
        v = ours_inv.get(fid, 0.0)
        assert theirs_inv.get(fid, 0.0) == pytest.approx(v, rel=1e-5, abs=tiny), db.flows[fid].name
    ours = characterise(ours_inv, db.flows, factors, mapping).score
    for cat in CATEGORIES:
        assert theirs[cat] == pytest.approx(ours[cat], rel=1e-5, abs=1e-15), cat
    assert ours["gwp100"] > 0 and ours["ap"] > 0 and ours["htp"] > 0


def test_us_grid_co2_and_so2_match_the_reference_reading(uslci):
    """US 2010 grid per kWh against lca-pollutants.md (an independent reading of the data):
    its grid shares of coal+gas make 0.5-0.8 kg CO2/kWh and the plants' SO2 several g/kWh."""
    db, solver, _, _ = uslci
    inv = solver.inventory(db.by_name(PROCESSES[0]).id)
    by_name: dict[str, float] = {}
    for fid, v in inv.items():
        by_name[db.flows[fid].name] = by_name.get(db.flows[fid].name, 0.0) + v
    assert 0.5 < by_name["Carbon dioxide, fossil"] < 0.8
    assert 1e-3 < by_name["Sulfur dioxide"] < 1e-2


def test_regenerating_gives_the_shipped_file():
    _need("bw2io")
    from slicer_energy.lca.uslci_build import build_table

    shipped = (data_dir("lca") / "background" / "uslci.csv").read_text(encoding="utf-8")
    assert build_table(ZIP) == shipped


def test_shipped_scores_sum_to_totals_and_link_well():
    db = load_background()
    assert {"electricity_us_2010", "truck_combination", "pla_ingeo"} <= set(db.uslci)
    for key, s in db.uslci.items():
        for cat in CATEGORIES:
            if s.total[cat]:
                assert sum(v for _, v in s.substances[cat]) == pytest.approx(s.total[cat], rel=1e-4)
            assert 0.95 <= s.linked_share[cat] <= 1.0 or s.total[cat] == 0.0, (key, cat)


def _lca_json(study: str, capsys) -> dict:
    from slicer_energy.cli import main

    assert main(["lca", study, "--energy", "pinned", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("study", ["phone-case", "aircraft-part"])
def test_every_scenario_has_every_category_with_shares(study, capsys):
    doc = _lca_json(study, capsys)
    assert doc["scenarios"]
    for sid, sc in doc["scenarios"].items():
        for key in KEYS:
            v = sc[key]
            assert isinstance(v, float) and math.isfinite(v) and v != 0.0, (sid, key)
            cat = sc["categories"][key]
            shares = [cat[f"{b}_share"] for b in ("uslci", "sourced", "proxy")]
            assert sum(shares) == pytest.approx(1.0), (sid, key)
            assert "uslci_linked_share" in cat
        assert sc["categories"]["htp_kg_14dcb_eq"]["substances"], sid
