"""The matrix engine against hand-computed and published examples, and conservation."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_energy.errors import LCAError
from slicer_energy.lca.calc import LCA, System
from slicer_energy.lca.data import Method, Num, load_method
from slicer_energy.lca.study import StudyRun
from slicer_energy.lca.system import STAGES

CO2 = ("Carbon dioxide, fossil", "air")
CH4 = ("Methane, fossil", "air")
SO2 = ("Sulfur dioxide", "air")
OIL = ("Oil, crude", "natural resource")


def _method(**factors) -> Method:
    f = {c: {} for c in ("gwp100", "adp", "htp", "ap")}
    for cat, flows in factors.items():
        f[cat] = {fl: Num(v, "test") for fl, v in flows.items()}
    return Method("test", f, {})


def test_two_process_example_by_hand():
    # electricity: 1 kWh -> 0.5 kg CO2, 0.002 kg CH4, 0.001 kg SO2
    # print: 1 part, uses 0.5 kWh, emits 0.01 kg CO2 directly
    # By hand: CO2 = 0.5*0.5 + 0.01 = 0.26; CH4 = 0.001; SO2 = 0.0005
    # GWP (AR5: CH4 28) = 0.26 + 0.001*28 = 0.288; AP (SO2 1.2) = 0.0006
    system = System(
        activities=["print", "electricity"],
        technosphere=[(0, 0, 1.0), (1, 1, 1.0), (1, 0, -0.5)],
        biosphere=[(CO2, 1, 0.5), (CH4, 1, 0.002), (SO2, 1, 0.001), (CO2, 0, 0.01)],
    )
    lca = LCA(system, load_method("ar5"))
    supply = lca.solve_linear_system(lca.demand_array({"print": 1.0}))
    np.testing.assert_allclose(supply, [1.0, 0.5])
    score = dict(zip(lca.categories, lca.score(supply), strict=True))
    assert score["gwp100"] == pytest.approx(0.288, rel=1e-12)
    assert score["ap"] == pytest.approx(0.0006, rel=1e-12)
    # HTP of SO2 (0.096) is characterised too: 0.0005 * 0.096
    assert score["htp"] == pytest.approx(0.0005 * 0.096, rel=1e-12)
    ci = lca.characterized_inventory(supply).toarray()
    assert ci[lca.categories.index("gwp100")].tolist() == pytest.approx([0.01, 0.278])
    # older GWP set (AR4: CH4 25) changes only the CH4 share
    lca4 = LCA(system, load_method("ar4"))
    assert lca4.score(supply)[0] == pytest.approx(0.26 + 0.001 * 25)


def test_heijungs_suh_worked_example():
    """Heijungs & Suh (2002), The Computational Structure of LCA, ch. 2 example.

    Electricity production: 10 kWh out, 2 l fuel in, 1 kg CO2, 0.1 kg SO2.
    Fuel production: 100 l fuel out, 10 kg CO2, 2 kg SO2, 50 l crude oil in.
    Demand 1000 kWh -> published s = (100, 2), g = (CO2 120, SO2 14, crude oil -100).
    """
    system = System(
        activities=["electricity production", "fuel production"],
        # rows: 0 = fuel (l), 1 = electricity (kWh)
        technosphere=[(0, 0, -2.0), (0, 1, 100.0), (1, 0, 10.0)],
        biosphere=[(CO2, 0, 1.0), (CO2, 1, 10.0), (SO2, 0, 0.1), (SO2, 1, 2.0), (OIL, 1, -50.0)],
    )
    lca = LCA(system, _method(gwp100={CO2: 1.0}, ap={SO2: 1.2}))
    supply = lca.solve_linear_system(np.array([0.0, 1000.0]))
    np.testing.assert_allclose(supply, [100.0, 2.0], rtol=1e-12)
    g = lca.biosphere_matrix @ supply
    inv = dict(zip(lca.flows, g, strict=True))
    assert inv[CO2] == pytest.approx(120.0)
    assert inv[SO2] == pytest.approx(14.0)
    assert inv[OIL] == pytest.approx(-100.0)
    score = dict(zip(lca.categories, lca.score(supply), strict=True))
    assert score["gwp100"] == pytest.approx(120.0)
    assert score["ap"] == pytest.approx(14.0 * 1.2)


def test_singular_technosphere_is_a_clear_error():
    system = System(["a", "b"], [(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 1.0)], [])
    with pytest.raises(LCAError, match="singular"):
        LCA(system, load_method())


def test_missing_data_is_reported_not_zeroed():
    system = System(
        activities=["product", "electricity", "unused"],
        technosphere=[(0, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0), (1, 0, -1.0)],
        biosphere=[(CO2, 1, 0.4)],
        missing={1: {"ap": "no SO2 data"}, 2: {"gwp100": "never used"}},
    )
    lca = LCA(system, load_method())
    supply = lca.solve_linear_system(lca.demand_array({"product": 1.0}))
    miss = lca.missing(supply)
    assert miss["ap"] == ["electricity: no SO2 data"]
    assert miss["gwp100"] == []  # the unused process does not make GWP incomplete


@pytest.fixture(scope="module")
def runs():
    return {n: StudyRun.create(n, energy_mode="pinned") for n in ("phone-case", "aircraft-part")}


def test_stages_sum_to_total_and_mass_balance_closes(runs):
    for run in runs.values():
        for res in run.results():
            for cat, total in res.totals.items():
                assert sum(res.by_stage[cat][s] for s in STAGES) == pytest.approx(
                    total, rel=1e-12, abs=1e-15
                ), (res.id, cat)
            assert res.mass_in_kg == pytest.approx(res.mass_out_kg, rel=1e-12), res.id


def test_h1_gwp_by_hand(runs):
    """H1 recomputed by hand from the numbers in lca/ (pinned energy, AR5)."""
    m, w = 0.025, 0.2
    mat = m / (1 - w)  # 0.03125 kg PC granulate
    material = mat * 4.2
    processing = m * 1.25 * 0.3869  # kWh/kg (Thiriez, converted) x CN-South
    transport = mat / 1000 * 200 * 0.077 + m / 1000 * (
        10 * 0.102 + 48 * 0.102 + 9000 * 0.531 + 170 * 0.077 + 20 * 0.631
    )
    eol = m * 2.769  # incineration of the case; process waste to recycling (cut-off)
    res = {r.id: r for r in runs["phone-case"].results()}["H1"]
    assert res.by_stage["gwp100"]["material"] == pytest.approx(material, rel=1e-12)
    assert res.by_stage["gwp100"]["processing"] == pytest.approx(processing, rel=1e-12)
    assert res.by_stage["gwp100"]["transport"] == pytest.approx(transport, rel=1e-12)
    assert res.by_stage["gwp100"]["end_of_life"] == pytest.approx(eol, rel=1e-12)
    assert res.totals["gwp100"] == pytest.approx(material + processing + transport + eol)
    # H1's AP transport by hand from the shipped USLCI scores (kg SO2-eq per t*km)
    ap = runs["phone-case"].db.uslci
    ap_tkm = {
        k: ap[k].total["ap"]
        for k in (
            "truck_combination",
            "truck_single_unit",
            "aircraft_freight",
            "truck_light_commercial",
        )
    }
    ap_transport = mat / 1000 * 200 * ap_tkm["truck_combination"] + m / 1000 * (
        58 * ap_tkm["truck_single_unit"]
        + 9000 * ap_tkm["aircraft_freight"]
        + 170 * ap_tkm["truck_combination"]
        + 20 * ap_tkm["truck_light_commercial"]
    )
    # the engine adds the per-substance rows (6 digits each), hence rel=1e-6
    assert res.by_stage["ap"]["transport"] == pytest.approx(ap_transport, rel=1e-6)
    assert not res.missing["ap"] and res.totals["ap"] > ap_transport
