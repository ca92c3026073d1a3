"""Leave-one-out calibration of a Creality Ender-3 from the corpus PZEM-017 traces.

Slices the corpus 3DBenchy with PrusaSlicer's Creality Ender-3 (0.4 mm nozzle) vendor preset,
overridden to the runs' stated settings (PLA, nozzle 200 °C, bed 50 °C, 50 mm/s, 20 % infill,
0.2 / 0.3 mm layers; corpus power/README.md), fits heater P/R/C, the hotend's part-fan loss,
base loads and the time scale to four runs and predicts the fifth from its G-code timeline and
stated conditions (which heaters were on, a hot start, an insulated bed). The meter is on the
24 V side, so the PSU efficiency is held at 1.

    python benchmarks/calib_ender3.py [--shared ../shared] [--work /tmp/e3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from slicer_energy.calib.inputs.trace import read_power_trace
from slicer_energy.calib.trace import TraceRun, fit_traces, predict_run, timeline
from slicer_energy.machine import load_machine

RUNS = (  # (file, layer mm, bed heater on, hotend heater on, starts hot, bed condition)
    ("raw_baseline_l2.csv", 0.2, True, True, False, None),
    ("raw_baseline_l3.csv", 0.3, True, True, False, None),
    ("raw_Insulation_result.csv", 0.3, True, True, True, "insulated"),
    ("raw_WIthout_heat_bed.csv", 0.3, False, True, False, None),
    ("raw_without_heatbed_heat_end.csv", 0.3, False, False, False, None),
)
OVERRIDES = [
    "--temperature", "200", "--first-layer-temperature", "200",
    "--bed-temperature", "50", "--first-layer-bed-temperature", "50",
    "--fill-density", "20%",
    "--perimeter-speed", "50", "--external-perimeter-speed", "50", "--infill-speed", "50",
    "--solid-infill-speed", "50", "--top-solid-infill-speed", "50",
    "--center", "117.5,117.5",
]  # fmt: skip


def slice_benchy(shared: Path, work: Path, layer: float) -> Path:
    out = work / f"benchy_ender3_{layer}.gcode"
    if out.exists():
        return out
    ini = work / "ender3.ini"
    subprocess.run(
        [sys.executable, str(shared / "reference/prusaslicer/flatten_profile.py"),
         "/usr/share/PrusaSlicer/profiles/Creality.ini", str(ini),
         "Creality Ender-3 (0.4 mm nozzle)", "0.20 mm NORMAL (0.4 mm nozzle) @CREALITY",
         "Generic PLA @CREALITY"], check=True)  # fmt: skip
    stl = str(shared / "corpus/stl/3dbenchy_lowpoly_aria876.stl")
    cmd = ["prusa-slicer", "--export-gcode", stl,
           "--load", str(ini), "--layer-height", str(layer), "--first-layer-height", str(layer),
           *OVERRIDES, "--output", str(out)]  # fmt: skip
    if shutil.which("xvfb-run"):
        cmd = ["xvfb-run", "-a", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def load_runs(shared: Path, work: Path, base) -> list[TraceRun]:
    tl = {lh: timeline(slice_benchy(shared, work, lh), base) for lh in (0.2, 0.3)}
    return [
        TraceRun(
            f,
            read_power_trace(shared / "corpus/power/ender3_pzem017" / f),
            tl[lh][0],
            bed_on=b,
            hotend_on=h,
            start_hot=hot,
            bed_condition=cond,
            filament_g=tl[lh][1] if h else 0.0,
        )
        for f, lh, b, h, hot, cond in RUNS
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--work", default="/tmp/calib_ender3")
    ap.add_argument("--json", default=None, help="also write the table and fits here")
    a = ap.parse_args()
    shared, work = Path(a.shared), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    base = load_machine("ender3-v2")
    base = replace(base, electrical=replace(base.electrical, psu_efficiency=1.0))
    runs = load_runs(shared, work, base)
    conds = tuple(sorted({r.bed_condition for r in runs if r.bed_condition}))
    out = []
    print("| held-out run | job window min | interruptions | measured Wh | predicted Wh | error "
          "| measured min | predicted min | not identified from the other four |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs):
        fit = fit_traces([x for j, x in enumerate(runs) if j != i], base, conditions=conds)
        e, t = predict_run(r, fit)
        a0, a1 = r.window
        em = r.energy_j()
        ints = r.interruptions()
        nid = [k for k, p in fit.params.items() if not p.identified]
        relevant = [k for k in nid if _matters(k, r)]
        out.append({"run": r.name, "window_min": [a0 / 60, a1 / 60],
                    "interruptions_min": [[x.t0_s / 60, x.t1_s / 60, x.steppers] for x in ints],
                    "measured_wh": em / 3600, "predicted_wh": e / 3600,
                    "error": e / em - 1, "measured_min": (a1 - a0) / 60, "predicted_min": t / 60,
                    "not_identified": nid,
                    "params": {k: [p.value, p.stderr] for k, p in fit.params.items()}})  # fmt: skip
        ii = ", ".join(f"{x.t0_s / 60:.1f}–{x.t1_s / 60:.1f}" for x in ints) or "–"
        print(f"| {r.name} | {a0 / 60:.1f}–{a1 / 60:.1f} | {ii} | {em / 3600:.1f} | {e / 3600:.1f} "
              f"| {100 * (e / em - 1):+.1f} % | {(a1 - a0) / 60:.1f} | {t / 60:.1f} "
              f"| {', '.join(relevant) or '–'} |")  # fmt: skip
    fit = fit_traces(runs, base)
    print("\nall five runs (value ± stderr; * = not identified, prior kept):")
    for k, p in fit.params.items():
        print(f"  {k:36s} {p.value:10.4g} ± {p.stderr:.2g}{'' if p.identified else ' *'}")
    print(f"  RMS cumulative-energy residual {100 * fit.rms_curve:.2f} % of each run")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


def _matters(key: str, r: TraceRun) -> bool:
    """Whether an unidentified parameter enters run ``r``'s prediction."""
    if key.startswith("bed.r_factor."):
        return r.bed_condition == key.split(".", 2)[2]
    if key.startswith("bed."):
        return r.bed_on
    if key.startswith("hotend."):
        return r.hotend_on
    return True


if __name__ == "__main__":
    main()
