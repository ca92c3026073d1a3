"""Bare power trace + G-code calibration on the corpus Ender-3 PZEM-017 traces.

References are the traces themselves (measured by someone else) and facts read off them
independently of the model: the meter's own gaps, the printer's board-only level, and a
second run of the same G-code.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from slicer_energy.calib.inputs.trace import (
    bed_power_w,
    interruptions,
    job_window,
    read_power_trace,
)
from slicer_energy.calib.trace import replay_parts
from slicer_energy.machine import load_machine
from slicer_energy.thermal import TimelineRow

from conftest import need_shared

E3 = ("corpus", "power", "ender3_pzem017")


def _trace(name: str):
    return read_power_trace(need_shared(*E3, name))


def test_meter_gaps_are_filled_with_the_surrounding_mean_not_a_straight_line():
    """raw_baseline_l2.csv misses 96 s of readings at 55 min between two bed-on readings
    (255 W each side); a straight line would book 255 W for all of it although the bed was
    switching (print-phase mean ~80 W, corpus README)."""
    tr = _trace("raw_baseline_l2.csv")
    d = np.diff(tr.t_s)
    i = int(np.argmax(d))
    assert d[i] > 90 and tr.power_w[i] > 240 and tr.power_w[i + 1] > 240
    filled_w = tr.interval_energy_j()[i] / d[i]
    assert 50 < filled_w < 150
    assert tr.gap_s() > 150  # four gaps in this file (12, 30, 61, 96 s)


def test_restart_and_heater_off_interruptions_found_in_the_traces():
    """The bed-off run holds two aborted starts (printing, then the board-only level for
    minutes) before the print that ran to the end; the job is that last print, which must
    last about as long as the ghost print of the same G-code (87.8 min)."""
    bedoff = _trace("raw_WIthout_heat_bed.csv")
    a, b = job_window(bedoff)
    ghost = _trace("raw_without_heatbed_heat_end.csv")
    ga, gb = job_window(ghost)
    assert 20 * 60 < a < 30 * 60
    assert (b - a) == pytest.approx(gb - ga, rel=0.05)
    # l3: at 82.6 min the meter log breaks off for 12 s (a reset), the printer sits at its
    # board-only level from 83.4 to 86.6 min, then re-heats: one interruption
    l3 = _trace("raw_baseline_l3.csv")
    w = job_window(l3)
    ints = interruptions(l3, w, 20.0, heaters=True)
    idle = [i for i in ints if not i.steppers]
    assert len(idle) == 1 and idle[0].t0_s / 60 == pytest.approx(82.6, abs=0.2)
    assert idle[0].t1_s / 60 == pytest.approx(86.6, abs=0.2)
    assert any(i.steppers for i in ints)  # heater-off stretches at the ~15 W stepper level
    assert not interruptions(ghost, (ga, gb), 20.0, heaters=False)
    # l2 at 22.1 min: 12 s without readings, then 6 W and 16 W (steppers, heaters off) for
    # 20 s, then the heaters come back: a reset too short for the 30 s heater-off rule
    l2 = _trace("raw_baseline_l2.csv")
    r2 = interruptions(l2, job_window(l2), 20.0, heaters=True)
    assert [(round(i.t0_s / 60, 1), round(i.t1_s / 60, 1), i.steppers) for i in r2] == [
        (22.1, 22.5, True)
    ]


def test_bed_share_of_a_bang_bang_bed():
    """With the bed's share taken out, the 0.3 mm baseline run draws what the bed-off run of
    the same G-code draws (hotend + base, ~47 W); the bed's on-level is its power
    (~205 W on top of the 35-55 W rest, corpus README)."""
    l3 = _trace("raw_baseline_l3.csv")
    bed = bed_power_w(l3, 130.0)
    on = bed[bed > 0]
    assert float(np.median(on)) == pytest.approx(205, rel=0.05)
    a, b = 20 * 60, 80 * 60  # steady printing, no interruption
    m = (l3.t_s >= a) & (l3.t_s <= b)
    rest_w = float(np.mean((l3.power_w - bed)[m]))
    bo = _trace("raw_WIthout_heat_bed.csv")
    mb = (bo.t_s >= 40 * 60) & (bo.t_s <= 100 * 60)
    assert rest_w == pytest.approx(float(np.mean(bo.power_w[mb])), rel=0.08)


def _row(t0, t1, kind, he, bed, fan=0.0):
    return TimelineRow(t0, t1, kind, 0, 0.0, he, 0.0, bed, 0.0, fan, 0.0, 0.0, 0.0)


def test_an_interruption_costs_a_reheat():
    """Heaters off long enough to cool to ambient: the reheat after it costs the bed what the
    first heat-up from cold cost it (same heater, same model, two code paths)."""
    m = load_machine("ender3-v2")
    rows = [_row(0, 0, "wait", 200, 60)] + [
        _row(600 * i, 600 * (i + 1), "motion", 200, 60) for i in range(6)
    ]
    t0, p0 = replay_parts(rows, m)
    t1, p1 = replay_parts(rows, m, pauses=[(1200.0, 20 * m.bed.tau_s, False)])
    heat_j = p0[1, 2]  # the wait row: heat-up from ambient
    extra = p1[-1, 2] - p0[-1, 2]
    reheat_s = (t1[-1] - t0[-1]) - 20 * m.bed.tau_s
    assert reheat_s > 0
    assert extra == pytest.approx(heat_j, rel=0.05)


# docs/calibration.md "Ender-3 power traces, leave-one-out": error of each held-out run, percent
README_LOO = {
    "raw_baseline_l2.csv": -3.3,
    "raw_baseline_l3.csv": -10.9,
    "raw_Insulation_result.csv": +16.3,
    "raw_WIthout_heat_bed.csv": +7.8,
    "raw_without_heatbed_heat_end.csv": +23.8,
}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prusa-slicer") is None, reason="prusa-slicer not installed")
def test_calibrate_power_csv_reproduces_the_readme_leave_one_out(tmp_path, capsys):
    """`calibrate --power-csv … --gcode …` on the five corpus PZEM-017 runs (the 3DBenchy
    sliced as benchmarks/calib_ender3.py slices it, states from the corpus README) gives the
    leave-one-out errors of docs/calibration.md within ±1 point, says the insulated bed's
    factor is not determined when its run is held out, and writes a profile that loads."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from calib_ender3 import run_files

    from slicer_energy.cli import main

    argv = ["calibrate", "--printer", "ender3-v2", "--fix-psu-efficiency", "1"]
    argv += ["--leave-one-out", "--json", "--out", str(tmp_path / "e3.toml")]
    for power, gcode, st in run_files(need_shared(), tmp_path):
        state = [w for w, on in (("bed-off", not st.bed_on), ("hotend-off", not st.hotend_on),
                                 ("hot-start", st.start_hot)) if on]  # fmt: skip
        state += [f"bed={st.bed_condition}"] if st.bed_condition else []
        argv += ["--power-csv", str(power), "--gcode", str(gcode)]
        argv += ["--run-state", ",".join(state) or "as-printed"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    got = {h["session"]: 100 * h["energy_error"] for h in out["holdout"]}
    assert got == pytest.approx(README_LOO, abs=1.0)
    ins = next(h for h in out["holdout"] if h["session"] == "raw_Insulation_result.csv")
    assert "bed.r_factor.insulated" in ins["not_identified"]
    m = load_machine(tmp_path / "e3.toml")
    assert m.calibrated and m.electrical.psu_efficiency == 1.0
    assert m.bed.p_max_w == pytest.approx(out["params"]["bed.p_max_w"]["value"], rel=1e-5)


def test_run_states_read_and_bad_words_named():
    from slicer_energy.calib.trace_runs import RunState, parse_run_state
    from slicer_energy.errors import CalibrationError

    assert parse_run_state("as-printed") == RunState()
    st = parse_run_state("bed-off, Hot-Start,bed=insulated")
    assert (st.bed_on, st.hotend_on, st.start_hot, st.bed_condition) == (
        False, True, True, "insulated",
    )  # fmt: skip
    with pytest.raises(CalibrationError, match="'bed-of'"):
        parse_run_state("bed-of")


def test_calibrate_power_csv_pairs_checked_in_one_line(tmp_path, capsys):
    from slicer_energy.cli import main

    csv = need_shared(*E3, "raw_baseline_l3.csv")
    assert main(["calibrate", "--power-csv", str(csv)]) == 2
    err = capsys.readouterr().err.strip()
    assert "1 --power-csv but 0 --gcode" in err and "\n" not in err
    g = tmp_path / "p.gcode"
    g.write_text("G28\n")
    argv = ["calibrate", "--power-csv", str(csv), "--gcode", str(g)]
    assert main([*argv, "--run-state", "a", "--run-state", "b"]) == 2
    assert "2 --run-state for 1 --power-csv" in capsys.readouterr().err
    assert main([*argv, "--gcode", str(g), "--power-csv", str(tmp_path / "none.csv")]) == 2
    assert "none.csv: power trace not found" in capsys.readouterr().err


def test_plug_export_read_as_a_bare_trace(tmp_path):
    """A Tasmota SENSOR log (times to the second) becomes seconds from its first reading."""
    from slicer_energy.calib.trace_runs import read_trace

    p = tmp_path / "tasmota.log"
    lines = [
        f'tele/plug/SENSOR {{"Time":"2026-05-01T14:0{i}:00+00:00","ENERGY":{{"Power":{w}}}}}'
        for i, w in enumerate((3, 250, 80, 4))
    ]
    p.write_text("\n".join(lines) + "\n")
    tr = read_trace(p)
    assert tr.t_s.tolist() == [0.0, 60.0, 120.0, 180.0]
    assert tr.power_w.tolist() == [3.0, 250.0, 80.0, 4.0]
