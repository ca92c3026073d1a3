"""The lca and claim commands, the energy provider, Monte Carlo, sensitivity and plots."""

from __future__ import annotations

import json

import pytest

from slicer_energy.cli import main
from slicer_energy.errors import ProcessModelUnavailable
from slicer_energy.lca.energy import (
    pinned_estimate,
    processing_estimate,
    step_energy,
)
from slicer_energy.lca.study import StudyRun, monte_carlo, sensitivity

KEYS = ("gwp100_kg_co2eq", "adp_kg_sb_eq", "htp_kg_14dcb_eq", "ap_kg_so2_eq")


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_lca_phone_case_json_ids_and_stage_split(capsys):
    doc = _json(capsys, ["lca", "phone-case", "--json", "--energy", "pinned"])
    assert doc["gwp_set"] == "ar5" and "AR5" in doc["gwp_set_note"]
    ids = set(doc["scenarios"])
    assert {"H1", "H2", "H3-30", "H3-60", "H4-30", "H4-60", "H5-A", "H5-B"} <= ids
    for s in doc["scenarios"].values():
        for k in KEYS:
            assert k in s
            cat = s["categories"][k]
            if cat["total"] is not None:
                assert sum(cat["by_stage"].values()) == pytest.approx(cat["total"], abs=1e-12)
            else:
                assert not cat["complete"] and cat["missing"]  # missing, not zero
    h3 = doc["scenarios"]["H3-60"]["categories"]["gwp100_kg_co2eq"]["by_stage"]
    h3_30 = doc["scenarios"]["H3-30"]["categories"]["gwp100_kg_co2eq"]["by_stage"]
    assert h3["material"] == pytest.approx(h3_30["material"] * (1 - 0.3) / (1 - 0.6))
    # Pinned figures, 200 draws, seed 42: every verdict pinned, so a change is deliberate
    verdicts = {f["statement"]: f["verdict"] for f in doc["findings"]}
    assert verdicts == {
        "laser sintering needs significantly more processing energy per case than home FDM": (
            "reproduced"
        ),
        "home printing is of the same order of magnitude as mass production": "reproduced",
        "home printing is better than mass production only with recycling and longer use": (
            "contradicted"
        ),
        "air freight matters in H1, transport otherwise small": "reproduced",
    }
    for f in doc["findings"]:  # the verdict is the one its interval gives
        for n in f["numbers"].values():
            assert n["p05"] <= n["median"] <= n["p95"]


def test_lca_aircraft_json_and_fz4_factor(capsys):
    doc = _json(capsys, ["lca", "aircraft-part", "--json", "--energy", "pinned"])
    assert {"FZ1", "FZ2-min", "FZ2-max", "FZ3-min", "FZ3-max", "FZ4-min", "FZ4-max"} <= set(
        doc["scenarios"]
    )
    fz4 = doc["scenarios"]["FZ4-min"]["categories"]["gwp100_kg_co2eq"]["by_stage"]
    assert fz4["use"] == pytest.approx(-1500 * 3.16)  # study's kerosene x ICAO factor
    f = doc["findings"][0]
    assert f["statement"].startswith("FZ4: kerosene saved outweighs production about 60")
    production = sum(v for k, v in fz4.items() if k != "use")
    factor = f["numbers"]["fz4_use_phase_factor_min"]
    assert factor["nominal"] == pytest.approx(4740 / production)
    # pinned MLS 64/103 kWh/kg: Min above 90 over its whole interval, Max straddling it
    assert factor["p05"] > 90 and f["numbers"]["fz4_use_phase_factor_max"]["p05"] < 90
    assert f["verdict"] == "undetermined"
    kwh = f["numbers"]["fz4_mls_kwh_per_kg_min"]  # the run's kWh/kg, not a typed figure
    assert kwh["nominal"] == pytest.approx(64.0)
    assert f"MLS at {kwh['median']:.0f} ({kwh['p05']:.0f}-{kwh['p95']:.0f})" in f["why"]
    verdicts = {x["statement"]: x["verdict"] for x in doc["findings"]}
    assert verdicts["FZ1 is dominated by aluminium production"] == "reproduced"
    assert verdicts["on-site MLS processing is the largest contributor of FZ2/FZ3"] == (
        "reproduced"
    )


def test_grid_override_changes_processing_only(capsys):
    de = _json(capsys, ["lca", "phone-case", "--json", "--energy", "pinned", "--grid", "FR"])
    base = _json(capsys, ["lca", "phone-case", "--json", "--energy", "pinned"])
    for sid in ("H4-30", "H5-A"):
        a = de["scenarios"][sid]["categories"]["gwp100_kg_co2eq"]["by_stage"]
        b = base["scenarios"][sid]["categories"]["gwp100_kg_co2eq"]["by_stage"]
        assert a["material"] == b["material"] and a["transport"] == b["transport"]
        kwh = base["scenarios"][sid]["processing_energy_kwh"]
        assert a["processing"] == pytest.approx(kwh * 0.041)  # FR, Ember
        assert b["processing"] == pytest.approx(kwh * 0.380)  # DE, UBA


def test_claim_json_headlines_and_verdicts(capsys):
    doc = _json(capsys, ["claim", "--json", "--energy", "pinned", "--draws", "60"])
    for k in ("sls_kwh_per_case", "fdm_kwh_per_case", "sls_to_fdm_factor", "flip_utilisation",
              "fz4_use_phase_factor", "fz4_use_phase_factor_max_energy"):  # fmt: skip
        h = doc[k]
        assert set(h) == {"median", "p05", "p95", "nominal"}
        assert h["p05"] < h["median"] < h["p95"]  # every headline rests on ranged inputs
        if k.startswith("fz4"):
            # nominal: full build and the study's 1,500 kg kerosene, both the top of their
            # ranges, so every draw saves less per kg CO2e produced: nominal above the median
            assert h["nominal"] > h["median"]
        else:
            assert h["p05"] <= h["nominal"] <= h["p95"]
    nom = {k: doc[k]["nominal"] for k in ("sls_kwh_per_case", "fdm_kwh_per_case")}
    assert doc["sls_to_fdm_factor"]["nominal"] == pytest.approx(
        nom["sls_kwh_per_case"] / nom["fdm_kwh_per_case"]
    )
    # pinned SLS: 30 kWh/kg x 0.025 kg; FDM 0.25 kWh -> factor 3, the crossing 3 full builds
    assert nom["sls_kwh_per_case"] == pytest.approx(0.75)
    assert doc["flip_utilisation"]["nominal"] == pytest.approx(3.0)
    assert doc["draws"] == 60 and len(doc["verdicts"]) == 7
    for v in doc["verdicts"]:
        assert set(v) >= {"statement", "verdict", "numbers"}
        assert v["verdict"] in ("reproduced", "contradicted", "undetermined")


def test_model_mode_without_models_is_a_clear_error(capsys, monkeypatch):
    import sys

    # None in sys.modules = not importable
    for mod in ("fdm", "sintering.sls", "sintering.mls", "baselines"):
        monkeypatch.setitem(sys.modules, f"slicer_energy.{mod}", None)
    assert main(["claim", "--energy", "model"]) == 2
    err = capsys.readouterr().err
    assert "process model" in err and "--energy pinned" in err


def test_provider_and_pinned_estimates():
    run = StudyRun.create("phone-case", energy_mode="pinned")
    step = run.study.get("H4-30").processing[0]
    try:
        processing_estimate(step)
    except ProcessModelUnavailable as exc:
        assert "slicer_energy.sintering.sls" in str(exc) or "predict" in str(exc)
    full = pinned_estimate(step, 0.025)
    half = pinned_estimate(step, 0.025, utilisation=0.5)
    assert full.energy_kwh == pytest.approx(0.75)
    assert half.energy_kwh == pytest.approx(1.5)  # job energy shared by half as many parts
    assert full.provenance["basis"] == "pinned" and full.provenance["source"]
    missing = run.study.get("H2").processing[1]
    assert step_energy(missing, 0.025, "pinned") is None


def test_monte_carlo_is_seeded_and_brackets_nominal():
    run = StudyRun.create("phone-case", energy_mode="pinned")
    a = monte_carlo(run, iterations=40, seed=7)
    b = monte_carlo(run, iterations=40, seed=7)
    c = monte_carlo(run, iterations=40, seed=8)
    assert a == b and a != c
    nominal = {r.id: r.totals["gwp100"] for r in run.results()}
    for sid, q in a["scenarios"].items():
        g = q["gwp100_kg_co2eq"]
        assert g["p5"] <= g["p50"] <= g["p95"]
        assert g["p5"] < nominal[sid] * 1.5 and g["p95"] > nominal[sid] * 0.5
    assert 0.0 <= a["p_gwp_order_holds"] <= 1.0
    p = a["p_gwp_lower"]
    assert p["H5-A"]["H1"] + p["H1"]["H5-A"] == pytest.approx(1.0)
    assert p["H5-B-long"]["H5-B"] > 0.8  # a longer life (1.5-3x) almost always wins
    assert "bg:material:pla_virgin|GWP100, pre-characterised|aggregate" in a["parameters"]
    assert "H4-30.processing[0].pinned_kwh_per_kg" in a["parameters"]


def test_sensitivity_directions():
    run = StudyRun.create("phone-case", energy_mode="pinned")
    s = sensitivity(run, top=3)
    util = s["utilisation"]["H4-30"]
    assert util["0.1"] > util["0.5"] > util["1.0"]  # fuller builds, less per case
    rec = s["recycled_share"]["H5-A"]
    assert rec["0.75"] < rec["0.0"]  # recycled content lowers GWP
    life = s["life_factor"]["H5-A"]
    assert life["2.0"] == pytest.approx(life["1.0"] / 2)
    assert s["grid"]["H4-30"]["FR"] < s["grid"]["H4-30"]["CN"]
    assert s["tornado"]["H1"] and s["tornado"]["H1"][0]["parameter"]


def test_plots_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["lca", "aircraft-part", "--energy", "pinned", "--plots", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(f"aircraft-part_{k}.png" for k in KEYS)
    assert all((tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_help_teaches():
    with pytest.raises(SystemExit):
        main(["lca", "--help"])


def test_auto_mode_takes_processing_energy_from_the_process_models():
    """H4 (SLS at a full build) gets its kWh from the same dispatch as ``predict --fill``,
    and the processing stage's GWP is that energy times the scenario's grid factor."""
    import importlib.util

    from slicer_energy.predict import predict_part
    from slicer_energy.samples import resolve_part

    run = StudyRun.create("phone-case", energy_mode="auto")
    est = run.energies["H4-30"][0]
    direct = predict_part(resolve_part("phone_case"), "sls", machine="eosint-p390", fill_build=True)
    assert est.provenance["basis"] == "model"
    assert est.energy_kwh == pytest.approx(direct.energy_kwh, rel=1e-9)
    res = {r.id: r for r in run.results()}["H4-30"]
    assert res.by_stage["gwp100"]["processing"] == pytest.approx(est.energy_kwh * 0.380)
    # FDM: the model where it is installed, else the pinned figure, and the run says which.
    fdm_here = importlib.util.find_spec("slicer_energy.fdm") is not None
    assert run.energies["H5-A"][0].provenance["basis"] == ("model" if fdm_here else "pinned")


def test_cli_rejects_a_broken_scenario_file_naming_file_and_key(tmp_path, capsys):
    from slicer_energy.lca.scenarios import study_path

    text = study_path("aircraft-part").read_text(encoding="utf-8")
    bad = tmp_path / "my-study.toml"
    bad.write_text(text.replace('mode = "air_freight"', 'mode = "zeppelin"', 1), encoding="utf-8")
    assert main(["lca", str(bad), "--energy", "pinned"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "scenario FZ1: transport[2].mode" in err and "zeppelin" in err
    good = tmp_path / "copy.toml"
    good.write_text(text, encoding="utf-8")
    doc = _json(capsys, ["lca", str(good), "--energy", "pinned", "--json"])
    assert doc["study"] == "aircraft-part" and "FZ1" in doc["scenarios"]
