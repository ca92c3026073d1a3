"""predict/compare commands: JSON keys, table output, errors as one line with exit code 2."""

from __future__ import annotations

import json

import pytest

from slicer_energy.cli import main

from conftest import need_shared

KEYS = {
    "time_s",
    "energy_kwh",
    "job_energy_kwh",
    "copies",
    "utilisation",
    "material_g",
    "powder_waste_g",
    "by_phase",
}


def _case():
    return str(need_shared("corpus", "stl", "iphone6_case_thing3532190.stl"))


def test_predict_sls_json(capsys):
    assert main(["predict", _case(), "--process", "sls", "--copies", "4", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert KEYS <= set(rec)
    assert rec["process"] == "sls" and rec["copies"] == 4
    assert rec["energy_kwh"] * 4 == pytest.approx(rec["job_energy_kwh"])
    assert sum(rec["by_phase"].values()) == pytest.approx(rec["energy_kwh"])
    assert set(rec["by_phase"]) == {"warmup", "build", "cooldown"}


def test_predict_fill_and_mls_table(capsys):
    assert main(["predict", _case(), "--process", "sls", "--fill"]) == 0
    out = capsys.readouterr().out
    assert "eosint-p390" in out and "kWh/part" in out
    assert main(["predict", _case(), "--process", "mls", "--variant", "high", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
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
        assert KEYS <= set(r)
    sls = [r for r in recs if r["process"] == "sls"]
    assert sls[0]["energy_kwh"] > sls[1]["energy_kwh"]  # single part vs full build


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert "--fill" in out and "examples:" in out and "build-height share" in out
