"""The ``slicer-energy gcode`` command end to end."""

from __future__ import annotations

import csv
import json

import pytest

from slicer_energy.cli import main

from conftest import check_record, need_shared


def test_cli_json_timeline_plot(tmp_path, capsys):
    g = need_shared("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    out_csv, plots = tmp_path / "t.csv", tmp_path / "plots"
    rc = main(
        [
            "gcode",
            str(g),
            "--printer",
            "ender3-v2",
            "--json",
            "--timeline",
            str(out_csv),
            "--plots",
            str(plots),
        ]
    )
    assert rc == 0
    d = check_record(json.loads(capsys.readouterr().out))
    assert d["process"] == "fdm" and d["fdm"]["gcode"]["planner"] == "marlin"
    assert d["time_s"] > d["print_time_s"] > 0
    assert sum(d["fdm"]["by_feature_s"].values()) == pytest.approx(d["print_time_s"])
    rows = list(csv.DictReader(out_csv.open()))
    assert float(rows[-1]["t1_s"]) == pytest.approx(d["time_s"], rel=1e-6)
    # the CSV rounds energies to 0.01 J
    assert sum(float(r["energy_j"]) for r in rows) / 3.6e6 == pytest.approx(
        d["energy_kwh"], rel=1e-4
    )
    png = plots / "theshamot__cube_0.2mm_PLA_ENDER3_11m-timeline.png"
    assert png.stat().st_size > 10_000


def test_cli_klipper_config_and_errors(tmp_path, capsys):
    g = need_shared("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    cfg = need_shared("corpus", "gcode", "printer_configs", "theshamot_klipper_printer.cfg")
    assert main(["gcode", str(g), "--printer", "ender3-v2", "--printer-config", str(cfg)]) == 0
    assert "klipper" in capsys.readouterr().out
    bad = tmp_path / "bad.gcode"
    bad.write_text("G1 X1 F600\nG1 Xoops\n")
    assert main(["gcode", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.gcode:2" in err
    assert main(["gcode", str(g), "--printer", "no-such-printer"]) == 2


def test_energy_by_phase_sums_to_total(capsys):
    g = need_shared("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    assert main(["gcode", str(g), "--printer", "ender3-v2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert sum(d["by_phase_kwh"].values()) == pytest.approx(d["energy_kwh"])
    assert sum(d["by_component_kwh"].values()) == pytest.approx(d["energy_kwh"])
    assert sum(d["by_phase_s"].values()) == pytest.approx(d["time_s"])
    assert set(d["by_phase_kwh"]) >= {"print", "heat_up"}
