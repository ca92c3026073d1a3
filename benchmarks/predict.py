"""End-to-end ``predict`` (FDM) vs PrusaSlicer's own slicing time, measured in the same run.

For the sample phone case and the bionic bracket: wall time of ``slicer-energy predict``
as a user runs it (a fresh process: mesh load, voxelise, features, time, energy) next to
``prusa-slicer --export-gcode`` on the same STL with the matching MK3S profile. Prints
the ratio (ours / PrusaSlicer; below 1 means faster). CPU (NumPy) unless
SLICER_ENERGY_BACKEND=cupy.

    python benchmarks/predict.py [--shared ../shared] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slicer_energy.fdm import prusaslicer
from slicer_energy.samples import sample_mesh


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args(argv)
    if prusaslicer.executable() is None:
        print("prusa-slicer not installed", file=sys.stderr)
        return 2
    ini = a.shared / "reference" / "prusaslicer" / "mk3s_pla_020.ini"
    backend = os.environ.get("SLICER_ENERGY_BACKEND", "numpy")
    print(f"backend {backend}; {os.cpu_count()} CPUs")
    print(f"{'part':16s} {'predict s':>10s} {'PrusaSlicer s':>14s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("phone_case", "bracket_bionic"):
            stl = Path(tmp) / f"{name}.stl"
            sample_mesh(name).export(stl)
            ours, ref = [], []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "slicer_energy.cli", "predict", str(stl), "--json"],
                    check=True,
                    capture_output=True,
                    env={**os.environ, "SLICER_ENERGY_BACKEND": backend},
                )
                ours.append(time.perf_counter() - t0)
                ref.append(prusaslicer.slice_stl(stl, ini, Path(tmp) / f"{name}.gcode").wall_s)
            o, r = min(ours), min(ref)
            print(f"{name:16s} {o:10.2f} {r:14.2f} {o / r:7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
