"""One part per scenario (issue 16 item 3) and casting on one basis (item 4).

Energy, material and end of life describe the same part: with model energies the part is
the sample geometry the model ran (its volume times the material's sourced density), with
``--energy pinned`` the scenario's fixed mass. What the product system books must balance:
material bought = part + process waste = mass sent to end of life.
"""

from __future__ import annotations

import pytest

from slicer_energy.lca.study import StudyRun
from slicer_energy.lca.system import build_system
from slicer_energy.samples import resolve_part

# "auto": the process models wherever they exist (H2's customiser print has none).
RUNS = [(s, m) for s in ("phone-case", "aircraft-part") for m in ("auto", "pinned")]


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], StudyRun]:
    return {(s, m): StudyRun.create(s, energy_mode=m) for s, m in RUNS}


def _booked(run: StudyRun, sid: str, stage: str, prefix: str) -> float:
    """Amount of background products ``prefix*`` the scenario's ``stage`` takes, read from
    the technosphere the engine solves (not from the builder's own totals)."""
    sc = run.study.get(sid)
    built = build_system(sc, run.db, run.energies[sid])
    acts = built.system.activities
    col = acts.index(built.stage_activity[stage])
    return -sum(
        a for i, j, a in built.system.technosphere if j == col and acts[i].startswith(prefix)
    )


@pytest.mark.parametrize(("study", "mode"), RUNS)
def test_mass_balance_per_scenario(runs, study, mode):
    run = runs[(study, mode)]
    for res in run.results():
        sc = run.study.get(res.id)
        bought = _booked(run, res.id, "material", "material:")
        to_eol = _booked(run, res.id, "end_of_life", "end_of_life:")
        part = res.part["part_kg"]
        assert bought == pytest.approx(part + res.part["process_waste_kg"], rel=1e-9), res.id
        assert to_eol == pytest.approx(bought, rel=1e-9), res.id
        assert res.mass_in_kg == pytest.approx(res.mass_out_kg, rel=1e-12)
        if mode == "pinned":
            assert part == sc.part_mass_kg.value, res.id
            assert res.part["mass_from"].startswith("scenario")
        else:
            assert "model" in res.part["mass_from"], res.id


# Sourced densities (g/cm3): PA 2200 0.93 (EOS SDS), AlSi10Mg 2.67 (EOS data sheet),
# cast aluminium 2.68 and moulded PC 1.20 (profile assumptions).
@pytest.mark.parametrize(
    ("study", "sid", "sample", "density"),
    [
        ("phone-case", "H1", "phone_case", 1.20),
        ("phone-case", "H3-30", "phone_case", 0.93),
        ("aircraft-part", "FZ1", "bracket", 2.68),
        ("aircraft-part", "FZ2-min", "bracket", 2.67),
        ("aircraft-part", "FZ3-min", "bracket_bionic", 2.67),
    ],
)
def test_model_mode_charges_the_part_whose_energy_was_modelled(runs, study, sid, sample, density):
    run = runs[(study, "auto")]
    res = {r.id: r for r in run.results()}[sid]
    expected_kg = resolve_part(sample).volume_mm3 / 1000.0 * density / 1000.0
    assert res.part["part_kg"] == pytest.approx(expected_kg, rel=0.01)


def test_model_waste_replaces_the_scenario_share(runs):
    """SLS: the model's unrecycled powder (refresh 50 % of the cake) is the waste, whatever
    the study's 30/60 % variant says; MLS books the argon its model computes."""
    run = runs[("phone-case", "auto")]
    res = {r.id: r for r in run.results()}
    est = run.energies["H3-30"][0]
    assert res["H3-30"].part["process_waste_kg"] == pytest.approx(est.waste_g / 1000.0)
    assert res["H3-30"].mass_in_kg == pytest.approx(res["H3-60"].mass_in_kg)
    air = runs[("aircraft-part", "auto")]
    est = air.energies["FZ2-min"][0]
    argon = _booked(air, "FZ2-min", "processing", "material:argon")
    assert argon == pytest.approx(est.extra["argon_m3"] * est.extra["share_of_job"])
    assert argon > 0


@pytest.mark.parametrize("mode", ["auto", "pinned"])
def test_casting_gas_is_combustion_and_nothing_is_booked_twice(runs, mode):
    """FZ1 books melting gas as natural gas burned in a boiler (USLCI's boiler with its supply
    chain, per m3 at 38.84 MJ/m3) and only the rest as US grid electricity; one step holds
    casting and machining, so processing GWP = electricity x grid factor + gas x gas factor."""
    run = runs[("aircraft-part", mode)]
    est = run.energies["FZ1"][0]
    assert [s.process for s in run.study.get("FZ1").processing] == ["casting"]
    gas = _booked(run, "FZ1", "processing", "fuel:natural_gas_industrial")
    elec = _booked(run, "FZ1", "processing", "electricity:")
    assert gas > 0 and gas + elec == pytest.approx(est.energy_kwh)
    per_kg = est.energy_kwh / (est.material_g / 1000.0)
    # per kg of finished part, both modes: (0.917 m3 x 10.79 + 1.92 kWh) / 0.9 + 2 x 0.111
    assert per_kg == pytest.approx((0.917 * 38.84 / 3.6 + 1.92) / 0.9 + 2.0 * 0.1 / 0.9, rel=2e-3)
    us_flows = run.db.get("electricity:US", "test").flows
    us = us_flows[("GWP100, pre-characterised", "aggregate")].value
    # USLCI boiler per m3: 1.96 kg CO2 burned (its own exchange) < cradle to gate < +25 %
    gwp_gas = run.db.uslci["natural_gas_boiler"].total["gwp100"] / (38.84 / 3.6)
    assert 1.96 / (38.84 / 3.6) < gwp_gas < 1.25 * 1.96 / (38.84 / 3.6)
    res = {r.id: r for r in run.results()}["FZ1"]
    assert res.by_stage["gwp100"]["processing"] == pytest.approx(
        elec * us + gas * gwp_gas, rel=2e-3
    )
