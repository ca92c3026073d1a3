"""``slicer-energy predict`` against PrusaSlicer's slicing of the same part, same run.

For every corpus part (``shared/corpus/stl``): PrusaSlicer's CLI slices it (MK3S 0.20mm
QUALITY, the profile :mod:`slicer_energy.fdm.prusaslicer` uses) and ``slicer-energy predict
PART --json`` predicts it, each as a whole fresh process, back to back. Prints both wall
times, their ratio (slicing / predict: above 1, predict is faster), both peak memories (the
child's own maximum RSS from ``os.wait4``) and the median ratio. Each pair runs ``--repeat``
times, alternating, and the fastest run of each counts (a shared machine's noise only ever
slows a run down). The package's bytecode is compiled first, as ``pip install`` does, so no
run pays for compiling it (this matters where ``PYTHONDONTWRITEBYTECODE`` is set).
A second table sets ``predict --copies N`` against ``prusa-slicer --duplicate N`` (N = 4
and 16) for the calibration cube and the keychain: print time of the plate and wall time of
each.
Writes both tables to ``docs/predict-speed.md``.

    python benchmarks/predict_vs_slicer.py [--shared ../shared] [--backend numpy|cupy]
        [--parts NAME ...] [--no-plates] [--repeat 3] [--out docs/predict-speed.md]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slicer_energy.fdm import prusaslicer

REPO = Path(__file__).resolve().parents[1]
PLATES = (("calibration_cube_nmgrl", 4), ("calibration_cube_nmgrl", 16))
PLATES += (("tiy_keychain_text", 4), ("tiy_keychain_text", 16))


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one whole process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[:4]} failed: {err.read().decode()[-500:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def slicer_cmd(stl: Path, ini: Path, gcode: Path, duplicate: int = 1) -> list[str]:
    cmd = [str(prusaslicer.executable()), "--export-gcode", "--load", str(ini)]
    cmd += ["--duplicate", str(duplicate)] if duplicate > 1 else []
    return cmd + ["-o", str(gcode), str(stl)]


def predict_cmd(stl: Path, copies: int = 1) -> list[str]:
    cmd = [sys.executable, "-m", "slicer_energy.cli", "predict", str(stl), "--json"]
    return cmd + (["--copies", str(copies)] if copies > 1 else [])


def fastest(
    cmds: tuple[list[str], list[str]], env: dict[str, str], repeat: int
) -> tuple[tuple[float, float, str], tuple[float, float, str]]:
    """Each of the two commands run ``repeat`` times, alternating: the fastest run of each
    (wall s, peak MB of that run, stdout)."""
    runs: tuple[list, list] = ([], [])
    for _ in range(repeat):
        runs[0].append(run_child(cmds[0]))
        runs[1].append(run_child(cmds[1], env))
    return min(runs[0]), min(runs[1])


def speed_table(
    stls: list[Path], ini: Path, tmp: Path, env: dict[str, str], repeat: int
) -> list[str]:
    """Per part: slicing and predict wall time, ratio and peak memory; the median ratio."""
    lines = [
        "| part | PrusaSlicer s | predict s | ratio slicing/predict | PrusaSlicer MB | "
        "predict MB |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for stl in stls:
        cmds = (slicer_cmd(stl, ini, tmp / f"{stl.stem}.gcode"), predict_cmd(stl))
        (ws, ms, _), (wp, mp, _) = fastest(cmds, env, repeat)
        ratios.append(ws / wp)
        lines.append(f"| {stl.stem} | {ws:.2f} | {wp:.2f} | {ws / wp:.2f} | {ms:.0f} | {mp:.0f} |")
        print(lines[-1], flush=True)
    lines.append(
        f"\nMedian ratio slicing/predict: **{statistics.median(ratios):.2f}** "
        f"(faster on {sum(r > 1 for r in ratios)} of {len(ratios)} parts)."
    )
    print(lines[-1], flush=True)
    return lines


def plate_table(stl_dir: Path, ini: Path, tmp: Path, env: dict[str, str], repeat: int) -> list[str]:
    """``predict --copies N`` against ``prusa-slicer --duplicate N``: plate print time."""
    lines = [
        "| part | copies | PrusaSlicer print time s | predict s | error | PrusaSlicer wall s | "
        "predict wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, n in PLATES:
        stl = stl_dir / f"{name}.stl"
        gcode = tmp / f"{name}_x{n}.gcode"
        cmds = (slicer_cmd(stl, ini, gcode, n), predict_cmd(stl, n))
        (ws, _, _), (wp, _, out) = fastest(cmds, env, repeat)
        ref_s = prusaslicer.read_footer(gcode)[0]
        ours = json.loads(out)["fdm"]["plate"]["job_print_time_s"]
        err = ours / ref_s - 1
        lines.append(
            f"| {name} | {n} | {ref_s:.0f} | {ours:.0f} | {err:+.1%} | {ws:.2f} | {wp:.2f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--backend", default="numpy", help="SLICER_ENERGY_BACKEND for predict")
    ap.add_argument("--parts", nargs="*", help="corpus part names (default: all)")
    ap.add_argument("--no-plates", action="store_true", help="skip the --copies table")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, fastest counts")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "predict-speed.md")
    a = ap.parse_args(argv)
    compileall.compile_dir(REPO / "slicer_energy", quiet=1)
    if prusaslicer.executable() is None:
        print("prusa-slicer not installed", file=sys.stderr)
        return 2
    ini = a.shared / "reference" / "prusaslicer" / "mk3s_pla_020.ini"
    stl_dir = a.shared / "corpus" / "stl"
    stls = sorted(p for p in stl_dir.glob("*.stl") if not a.parts or p.stem in a.parts)
    env = {**os.environ, "SLICER_ENERGY_BACKEND": a.backend}
    load = os.getloadavg()[0]
    where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(f"backend {a.backend}; {where}; load average {load:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        speed = speed_table(stls, ini, Path(tmp), env, a.repeat)
        plates = [] if a.no_plates else plate_table(stl_dir, ini, Path(tmp), env, a.repeat)
    text = [
        "# `predict` against PrusaSlicer's slicing",
        "",
        "Generated by `python benchmarks/predict_vs_slicer.py` (do not edit by hand): each "
        "corpus part sliced by PrusaSlicer's CLI (MK3S 0.20mm QUALITY) and predicted by "
        "`slicer-energy predict PART --json`, each a whole fresh process, back to back in the "
        f"same run, {a.repeat} times each, alternating, the fastest run of each counting; "
        "peak memory is each process's own maximum RSS.",
        "",
        f"Run on {time.strftime('%Y-%m-%d')}: backend {a.backend}, {where}, load average "
        f"{load:.1f} at the start (timings on a shared machine vary by tens of per cent).",
        "",
        *speed,
    ]
    if plates:
        text += ["", "## Plates: `predict --copies N` against `prusa-slicer --duplicate N`", ""]
        text += plates
    a.out.write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
