"""predict/compare commands: JSON keys, table output, errors as one line with exit code 2."""

from __future__ import annotations

import json

import pytest

from slicer_energy.cli import main

from conftest import check_record, need_shared


def _case():
    return str(need_shared("corpus", "stl", "iphone6_case_thing3532190.stl"))


def test_predict_sls_json(capsys):
    assert main(["predict", _case(), "--process", "sls", "--copies", "4", "--json"]) == 0
    rec = check_record(json.loads(capsys.readouterr().out))
    assert rec["process"] == "sls" and rec["sintering"]["copies"] == 4
    assert rec["energy_kwh"] * 4 == pytest.approx(rec["sintering"]["job_energy_kwh"])
    assert sum(rec["by_phase_kwh"].values()) == pytest.approx(rec["energy_kwh"])
    assert set(rec["by_phase_kwh"]) == {"heat_up", "print", "cool_down"}


def test_predict_fill_and_mls_table(capsys):
    assert main(["predict", _case(), "--process", "sls", "--fill"]) == 0
    out = capsys.readouterr().out
    assert "eosint-p390" in out and "kWh/part" in out
    assert main(["predict", _case(), "--process", "mls", "--variant", "high", "--json"]) == 0
    rec = check_record(json.loads(capsys.readouterr().out))
    assert rec["process"] == "mls" and rec["settings"]["variant"] == "high"


def test_predict_errors_are_one_line(capsys):
    assert main(["predict", _case(), "--process", "sls", "--copies", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slicer-energy: error:") and "--copies" in err
    assert main(["predict", _case(), "--process", "sls", "--material", "AlSi10Mg"]) == 2
    assert "cannot process material" in capsys.readouterr().err
    assert main(["predict", "no_such_part.stl", "--process", "sls"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_compare_json_records(capsys):
    assert main(["compare", _case(), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    procs = [r["process"] for r in recs]
    assert {"sls", "mls", "injection-moulding", "casting"} <= set(procs)
    for r in recs:
        check_record(r)
    sls = [r for r in recs if r["process"] == "sls"]
    assert sls[0]["energy_kwh"] > sls[1]["energy_kwh"]  # single part vs full build


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert "--fill" in out and "examples:" in out and "build-height share" in out


def _all_parts() -> list[str]:
    from slicer_energy.samples import SAMPLES

    from conftest import SHARED

    stl = SHARED / "corpus" / "stl"
    return [*SAMPLES, *(str(p) for p in sorted(stl.glob("*.stl")))] if stl.is_dir() else [*SAMPLES]


@pytest.mark.parametrize("part", _all_parts(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_full_build_packing_density_within_practice(part, capsys):
    from slicer_energy.sintering.sls import load_sls_machine

    cap = load_sls_machine("eosint-p390").chamber.max_packing_density
    assert main(["predict", part, "--process", "sls", "--fill", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    # Part volume over the P 390's 340 x 340 x 620 mm, recomputed from the record's own mass.
    sint = rec["sintering"]
    volume_mm3 = rec["material_g"] / 0.93 * 1000 * sint["copies"]
    assert sint["packing_density"] == pytest.approx(volume_mm3 / (340 * 340 * 620), rel=1e-6)
    assert 0.04 <= sint["packing_density"] <= cap  # the profile's ceiling, 15 %
    assert sint["kwh_per_kg_measured_range"] == pytest.approx([16.9, 1347.0], abs=0.1)
