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

from slicer_energy.calib.trace import fit_traces
from slicer_energy.calib.trace_runs import RunState, leave_one_out, load_runs
from slicer_energy.machine import load_machine

RUNS = (  # (file, layer mm, stated state: corpus power/README.md)
    ("raw_baseline_l2.csv", 0.2, RunState()),
    ("raw_baseline_l3.csv", 0.3, RunState()),
    ("raw_Insulation_result.csv", 0.3, RunState(start_hot=True, bed_condition="insulated")),
    ("raw_WIthout_heat_bed.csv", 0.3, RunState(bed_on=False)),
    ("raw_without_heatbed_heat_end.csv", 0.3, RunState(bed_on=False, hotend_on=False)),
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


def run_files(shared: Path, work: Path) -> list[tuple[Path, Path, RunState]]:
    """(power trace, sliced G-code, state) of each corpus run."""
    g = {lh: slice_benchy(shared, work, lh) for lh in (0.2, 0.3)}
    return [(shared / "corpus/power/ender3_pzem017" / f, g[lh], st) for f, lh, st in RUNS]


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
    runs = load_runs(run_files(shared, work), base)
    rows = leave_one_out(runs, base)
    print("| held-out run | job window min | interruptions | measured Wh | predicted Wh | error "
          "| measured min | predicted min | not identified from the other four |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for h in rows:
        a0, a1 = h.window_s
        ii = ", ".join(f"{x.t0_s / 60:.1f}–{x.t1_s / 60:.1f}" for x in h.interruptions) or "–"
        print(f"| {h.run} | {a0 / 60:.1f}–{a1 / 60:.1f} | {ii} | {h.measured_j / 3600:.1f} "
              f"| {h.predicted_j / 3600:.1f} | {100 * h.error:+.1f} % | {h.measured_s / 60:.1f} "
              f"| {h.predicted_s / 60:.1f} | {', '.join(h.not_identified) or '–'} |")  # fmt: skip
    fit = fit_traces(runs, base)
    print("\nall five runs (value ± stderr; * = not identified, prior kept):")
    for k, p in fit.params.items():
        print(f"  {k:36s} {p.value:10.4g} ± {p.stderr:.2g}{'' if p.identified else ' *'}")
    print(f"  RMS cumulative-energy residual {100 * fit.rms_curve:.2f} % of each run")
    if a.json:
        Path(a.json).write_text(json.dumps([h.as_dict() for h in rows], indent=1))


if __name__ == "__main__":
    main()
