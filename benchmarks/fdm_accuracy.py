"""FDM prediction vs PrusaSlicer 2.5 on every reference part (the README's accuracy table).

Slices each part with the Debian ``prusa-slicer`` CLI (MK3S, 0.20mm QUALITY, Prusament PLA,
../shared/reference/prusaslicer/mk3s_pla_020.ini) and runs ``predict_fdm`` on the same STL;
prints a Markdown table (part, ours, PrusaSlicer, error) for time and filament.

    python benchmarks/fdm_accuracy.py [--shared ../shared] [--jobs 2] [--preset NAME] [PART ...]

``--preset`` 0.15mm-quality / 0.30mm-draft compares with mk3s_pla_015.ini / mk3s_pla_030.ini.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slicer_energy.fdm import prusaslicer
from slicer_energy.fdm.predict import predict_fdm
from slicer_energy.fdm.reference_parts import CORPUS, MADE, reference_parts
from slicer_energy.geometry import load_mesh

INI = {
    "0.15mm-quality": "mk3s_pla_015.ini",
    "0.20mm-quality": "mk3s_pla_020.ini",
    "0.30mm-draft": "mk3s_pla_030.ini",
}


def hm(s: float) -> str:
    return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", help=f"default: all ({', '.join([*MADE, *CORPUS])})")
    ap.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    ap.add_argument("--jobs", type=int, default=2, help="PrusaSlicer processes at once")
    ap.add_argument("--preset", default="0.20mm-quality", choices=sorted(INI))
    a = ap.parse_args(argv)
    if prusaslicer.executable() is None:
        print("prusa-slicer not installed", file=sys.stderr)
        return 2
    ini = a.shared / "reference" / "prusaslicer" / INI[a.preset]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts = reference_parts(tmp / "stl", a.shared / "corpus" / "stl", a.parts or None)
        with ThreadPoolExecutor(a.jobs) as pool:
            futs = {
                p.name: pool.submit(
                    prusaslicer.slice_stl, p.path, ini, tmp / f"{p.name}.gcode", p.supports
                )
                for p in parts
            }
            print(
                "| part | fitted on | time ours | time PrusaSlicer | error | filament ours m "
                "| PrusaSlicer m | error |"
            )
            print("|---|---|---|---|---|---|---|---|")
            worst_t = worst_f = 0.0
            for p in parts:
                est = predict_fdm(load_mesh(p.path), preset=a.preset, supports=p.supports)
                ref = futs[p.name].result()
                ours_t, ours_f = est.extra["print_time_s"], est.extra["filament_mm"]
                et, ef = ours_t / ref.time_s - 1, ours_f / ref.filament_mm - 1
                if not p.training:
                    worst_t, worst_f = max(worst_t, abs(et)), max(worst_f, abs(ef))
                name = p.name + (" (supports)" if p.supports else "")
                print(
                    f"| {name} | {'yes' if p.training else 'no'} | {hm(ours_t)} | "
                    f"{hm(ref.time_s)} | {100 * et:+.1f} % | {ours_f / 1000:.2f} | "
                    f"{ref.filament_mm / 1000:.2f} | {100 * ef:+.1f} % |",
                    flush=True,
                )
    print(f"\nworst held-out error: time {100 * worst_t:.1f} %, filament {100 * worst_f:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
