"""First-order-plus-dead-time heater fits to every heat-up in the corpus Klipper logs.

python benchmarks/calib_klipper.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slicer_energy.calib.inputs.klipper import read_klippy_stats
from slicer_energy.calib.klipper import fit_heatup, heatups


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    a = ap.parse_args()
    logs = sorted((Path(a.shared) / "corpus/power/klippy_logs").glob("*.log"))
    print("| log | heater | from → to °C | gain K | τ s | dead s | RMS °C | s fitted |")
    print("|---|---|---|---|---|---|---|---|")
    for p in logs:
        for name, hl in read_klippy_stats(p).items():
            for sl in heatups(hl):
                f = fit_heatup(hl, sl)
                print(
                    f"| {p.stem} | {name} | {f.from_c:.0f} → {f.to_c:.0f} | {f.gain_k:.0f} "
                    f"| {f.tau_s:.0f} | {f.dead_s:.1f} | {f.rms_c:.2f} | {f.n} |"
                )


if __name__ == "__main__":
    main()
