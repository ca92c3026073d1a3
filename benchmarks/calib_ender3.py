"""Leave-one-out calibration of a Creality Ender-3 from the corpus PZEM-017 traces.

Slices the corpus 3DBenchy with PrusaSlicer's Creality Ender-3 (0.4 mm nozzle) vendor preset,
overridden to the runs' stated settings (PLA, nozzle 200 °C, bed 50 °C, 50 mm/s, 20 % infill,
0.2 / 0.3 mm layers; corpus power/README.md), fits heater P/R/C, base power and time scale
to four runs' energy curves and predicts the fifth. The meter is on the 24 V side, so the PSU
efficiency is held at 1.

    python benchmarks/calib_ender3.py [--shared ../shared] [--work /tmp/e3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from slicer_energy.calib.trace import (
    TraceRun,
    fit_traces,
    predict_run,
    read_power_trace,
    timeline_rows,
)
from slicer_energy.machine import load_machine

RUNS = (  # (file, layer mm, bed heater on, hotend heater on)
    ("raw_baseline_l2.csv", 0.2, True, True),
    ("raw_baseline_l3.csv", 0.3, True, True),
    ("raw_Insulation_result.csv", 0.3, True, True),
    ("raw_WIthout_heat_bed.csv", 0.3, False, True),
    ("raw_without_heatbed_heat_end.csv", 0.3, False, False),
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--work", default="/tmp/calib_ender3")
    a = ap.parse_args()
    shared, work = Path(a.shared), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    base = load_machine("ender3-v2")
    base = replace(base, electrical=replace(base.electrical, psu_efficiency=1.0))
    rows = {lh: timeline_rows(slice_benchy(shared, work, lh), base) for lh in (0.2, 0.3)}
    runs = [
        TraceRun(f, read_power_trace(shared / "corpus/power/ender3_pzem017" / f), rows[lh], b, h)
        for f, lh, b, h in RUNS
    ]
    print("| held-out run | measured Wh | predicted Wh | error | measured min | predicted min |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(runs):
        m, _vals = fit_traces([x for j, x in enumerate(runs) if j != i], base)
        e, t = predict_run(r, m)
        a0, a1 = r.window
        em = r.measured()[1][-1]
        print(f"| {r.name} | {em / 3600:.1f} | {e / 3600:.1f} | {100 * (e / em - 1):+.1f} % "
              f"| {(a1 - a0) / 60:.1f} | {t / 60:.1f} |")  # fmt: skip
    m, vals = fit_traces(runs, base)
    print("\nall five runs: " + ", ".join(f"{k} {v:.4g}" for k, v in vals.items()))


if __name__ == "__main__":
    main()
