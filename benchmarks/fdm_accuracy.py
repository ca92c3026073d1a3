"""FDM prediction vs PrusaSlicer 2.5 on every reference part (docs/fdm-accuracy.md).

Slices each part with the Debian ``prusa-slicer`` CLI (MK3S, 0.20mm QUALITY, Prusament PLA,
../shared/reference/prusaslicer/mk3s_pla_020.ini) and runs ``predict_fdm`` on the same STL;
prints a Markdown table (part, ours, PrusaSlicer, error) for time and filament, and with
``--out`` writes it as a page (all parts: docs/fdm-accuracy.md).

    python benchmarks/fdm_accuracy.py [--shared ../shared] [--jobs 2] [--preset NAME]
        [--out docs/fdm-accuracy.md] [PART ...]

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
from slicer_energy.fdm.reference_parts import CORPUS, MADE, PLATES, RefPart, reference_parts
from slicer_energy.geometry import load_mesh

# Why the parts outside the targets miss (from their per-feature times against PrusaSlicer's
# G-code, `slicer_energy.gcode.analyze` in prusa mode).
MISSES = {
    "bcc_lattice": "time -12 %: with Arachne's bead counts and the corner slowdown by turn "
    "angle its external perimeters match PrusaSlicer's G-code (1852 s against 1865 s), but the "
    "inner beads are 30 % short (15353 mm against 21898 mm; 823 s against 1127 s): Arachne "
    "picks the bead count on the slowly varying ('central') part of each strut's ridge and "
    "keeps that beading, as offset paths, into the steep ends of the elliptic sections, where "
    "the model counts the local width's fewer beads; travel is 15 % short (3012 s against "
    "3545 s, 6591 retractions against 7475): PrusaSlicer splits the inner beads of the "
    "star-shaped node sections into about five paths per island, the model counts one per "
    "connected region.",
    "vase_robotsupc": "(fitted on for FILL_PART_MIN_SPACINGS) travel counts now match "
    "PrusaSlicer's (22221 against 23681 travels); the excess is in the fills of its thin "
    "decorated walls.",
}
INI = {
    "0.15mm-quality": "mk3s_pla_015.ini",
    "0.20mm-quality": "mk3s_pla_020.ini",
    "0.30mm-draft": "mk3s_pla_030.ini",
}


def hm(s: float) -> str:
    return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "parts", nargs="*", help=f"default: all ({', '.join([*MADE, *CORPUS, *PLATES])})"
    )
    ap.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
    )
    ap.add_argument("--jobs", type=int, default=2, help="PrusaSlicer processes at once")
    ap.add_argument("--preset", default="0.20mm-quality", choices=sorted(INI))
    ap.add_argument("--out", type=Path, help="write the table as a Markdown page here")
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
            lines = [
                "| part | fitted on | time ours | time PrusaSlicer | error | filament ours m "
                "| PrusaSlicer m | error |",
                "|---|---|---|---|---|---|---|---|",
            ]
            print(*lines, sep="\n")
            worst_t = worst_f = 0.0
            for p in parts:
                row, et, ef = _row(p, futs[p.name].result(), a.preset)
                if not p.training:
                    worst_t, worst_f = max(worst_t, abs(et)), max(worst_f, abs(ef))
                lines.append(row)
                print(row, flush=True)
    worst = f"Worst held-out error: time {100 * worst_t:.1f} %, filament {100 * worst_f:.1f} %."
    print("\n" + worst)
    if a.out:
        a.out.write_text(_page(lines, worst, a.preset))
    return 0


def _row(p: RefPart, ref: prusaslicer.SliceResult, preset: str) -> tuple[str, float, float]:
    """One table row (and the time and filament errors) of part ``p``."""
    est = predict_fdm(load_mesh(p.path), preset=preset, supports=p.supports)
    ours_t, ours_f = est.extra["print_time_s"], est.extra["filament_mm"]
    et, ef = ours_t / ref.time_s - 1, ours_f / ref.filament_mm - 1
    name = p.name + (" (supports)" if p.supports else "")
    row = (
        f"| {name} | {'yes' if p.training else 'no'} | {hm(ours_t)} | "
        f"{hm(ref.time_s)} | {100 * et:+.1f} % | {ours_f / 1000:.2f} | "
        f"{ref.filament_mm / 1000:.2f} | {100 * ef:+.1f} % |"
    )
    return row, et, ef


def _page(lines: list[str], worst: str, preset: str) -> str:
    """The Markdown page: what was compared, the table, and why the misses miss."""
    misses = "\n".join(f"- **{k}**: {v}" for k, v in MISSES.items())
    return (
        "# FDM prediction against PrusaSlicer 2.5\n\n"
        "Generated by `python benchmarks/fdm_accuracy.py --out docs/fdm-accuracy.md` "
        "(do not edit by hand). Each part is sliced by Debian's `prusa-slicer` 2.5 with the "
        f"MK3S profile of preset `{preset}` (Prusament PLA; `--support-material` where marked) "
        "and compared with `predict` on the same STL: PrusaSlicer's `; estimated printing time "
        "(normal mode)` and `; filament used [mm]` against our `print_time_s` and "
        "`filament_mm`. Target: time within ±10 %, filament within ±5 %. Parts marked "
        "`fitted on: yes` were used to fit or choose a free constant "
        "(`slicer_energy/fdm/reference_parts.py` `TRAINING`); the others are held out. "
        "Lattices, the gyroid sheet, the strut tree and the `_xN` plates (N copies in one "
        "mesh, 6 mm apart) are made by `reference_parts.py`.\n\n"
        + "\n".join(lines)
        + f"\n\n{worst}\n\n## Where a part misses, and why\n\n{misses}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
