"""Throughput and peak memory of parse + plan (+ energy timeline) on >= 2M lines of real G-code.

Run: python benchmarks/gcode.py [../shared] [--lines 2000000] [--repeat 3]

Concatenates the corpus G-code files (decompressed) until the line target is reached,
then measures CPU time (time.process_time: the machine may be shared, and CPU time of
this one process is the 'one core' figure) of:

* Python's own ``for line in file`` (the floor of any line-by-line parser),
* parsing only, with the readable NumPy reference scan and with the compiled scan,
* ``analyze_file`` (parse + plan + thermal/electrical timeline) for each planner mode
  (prusa = PrusaSlicer 2.5 estimator emulation, marlin, klipper), compiled path
  (median and best of --repeat runs, after one warm-up run that loads numba) and the
  readable reference path once (the peer, same run, same file).

Peak memory is measured at three file sizes (--lines / 4, --lines, 2 x --lines) in a
fresh process per file size and mode: the peak resident
set (VmHWM, everything: Python, NumPy, numba's runtime and LLVM) and the peak of
Python-tracked allocations (tracemalloc, which does not see numba's own arrays).
The compiled path's one-off start-up (import numba + load cached kernels) is measured
in a fresh process too and reported separately.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.parse import iter_chunks
from slicer_energy.machine import load_machine

MODES = ("prusa", "marlin", "klipper")


def build(shared: Path, n_lines: int, out: Path) -> int:
    files = sorted((shared / "corpus" / "gcode").glob("*.gcode.gz"))
    n = 0
    with out.open("w") as fh:
        while n < n_lines:
            for f in files:
                with gzip.open(f, "rt", encoding="utf-8") as g:
                    for line in g:
                        fh.write(line)
                        n += 1
                if n >= n_lines:
                    break
    return n


def cpu(fn) -> tuple[float, object]:
    c0 = time.process_time()
    r = fn()
    return time.process_time() - c0, r


_CHILD = """
import json, sys, time, tracemalloc
path, mode, jit, trace = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
c0 = time.process_time()
from slicer_energy.gcode import _jit
if jit:
    _jit.available()
    for k in ("scan_block", "marlin_jerk", "prusa_feed"):
        _jit.kernel(k)
startup = time.process_time() - c0
from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.machine import load_machine
m = load_machine("ender3-v2")
if trace:
    tracemalloc.start()
c1 = time.process_time()
r = analyze_file(path, m, mode=mode, keep_rows=False, jit=jit)
run = time.process_time() - c1
peak_py = tracemalloc.get_traced_memory()[1] if trace else 0
# VmHWM: this process image's peak RSS (ru_maxrss would include the forked parent's)
rss = next(int(ln.split()[1]) * 1024 for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
print(json.dumps({"startup_cpu_s": startup, "run_cpu_s": run, "rss": rss, "py": peak_py,
                  "print_time_s": r.print_time_s}))
"""


def child(path: Path, mode: str, jit: bool, trace: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode, "1" if jit else "0", "1" if trace else "0"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:  # noqa: PLR0915 - one benchmark script, a straight run of timed steps
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "shared", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared")
    )
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", default="/tmp")
    a = ap.parse_args()
    big = Path(a.tmp) / "slicer_energy_bench_big.gcode"
    small = Path(a.tmp) / "slicer_energy_bench_small.gcode"
    huge = Path(a.tmp) / "slicer_energy_bench_huge.gcode"
    n_big = build(Path(a.shared), a.lines, big)
    n_small = build(Path(a.shared), a.lines // 4, small)
    m = load_machine("ender3-v2")
    print(f"file: {n_big} lines, {big.stat().st_size / 2**20:.0f} MiB (corpus concatenated)")
    print("CPU time of this process (time.process_time), one core\n")

    def py_iter():
        c = 0
        with big.open() as fh:
            for line in fh:
                c += line.startswith("G1 ")
        return c

    def parse(jit):
        return sum(len(ch.moves) for ch, _ in iter_chunks(big, jit=jit))

    cpu(lambda: parse(True))  # warm-up: import numba, load the cached kernels
    rows = []
    c_floor, _ = cpu(py_iter)
    rows.append(("python: for line in file", c_floor, None))
    c_ref, _ = cpu(lambda: parse(False))
    rows.append(("parse, NumPy scan (reference)", c_ref, None))
    runs = [cpu(lambda: parse(True))[0] for _ in range(a.repeat)]
    rows.append(("parse, compiled scan", statistics.median(runs), min(runs)))
    print(f"{'step':40s} {'cpu s':>7s} {'best':>6s} {'lines/cpu-s':>12s} {'vs reference':>12s}")
    for name, c, best in rows:
        b = f"{best:6.2f}" if best is not None else f"{'':6s}"
        ratio = f"{c_ref / c:12.2f}" if name.startswith("parse") else f"{'':12s}"
        print(f"{name:40s} {c:7.2f} {b} {n_big / c:12.0f} {ratio}")
    print()
    table = []
    for mode in MODES:
        cpu(lambda mode=mode: analyze_file(big, m, mode=mode, keep_rows=False, jit=True))
        runs = []
        for _ in range(a.repeat):
            c, r_fast = cpu(
                lambda mode=mode: analyze_file(big, m, mode=mode, keep_rows=False, jit=True)
            )
            runs.append(c)
        c_ref, r_ref = cpu(
            lambda mode=mode: analyze_file(big, m, mode=mode, keep_rows=False, jit=False)
        )
        same = r_fast.print_time_s == r_ref.print_time_s and r_fast.energy_j == r_ref.energy_j
        med = statistics.median(runs)
        table.append((mode, med, min(runs), c_ref, same))
    print(
        f"{'parse+plan+energy, mode':24s} {'compiled cpu s':>14s} {'best':>6s} "
        f"{'lines/cpu-s':>12s} {'best l/s':>10s} {'reference s':>11s} {'ref l/s':>9s} "
        f"{'speed-up':>8s} {'same result':>11s} {'>=500k':>6s}"
    )
    for mode, med, best, c_ref, same in table:
        print(
            f"{mode:24s} {med:14.2f} {best:6.2f} {n_big / med:12.0f} {n_big / best:10.0f} "
            f"{c_ref:11.2f} {n_big / c_ref:9.0f} {c_ref / med:8.1f} {str(same):>11s} "
            f"{'yes' if n_big / med >= 500_000 else 'no':>6s}"
        )
    n_huge = build(Path(a.shared), a.lines * 2, huge)  # memory only
    sizes = ((small, n_small), (big, n_big), (huge, n_huge))
    print("\nfresh process per run: peak memory (streaming; should not grow with the file)")
    print(
        f"{'mode':8s} {'lines':>9s} {'peak RSS MiB':>12s} {'peak Python MiB':>15s} "
        f"{'run cpu s':>9s} {'start-up cpu s':>14s}"
    )
    for mode in MODES:
        for path, n in sizes:
            r = child(path, mode, True, False)
            t = child(path, mode, True, True)
            print(
                f"{mode:8s} {n:9d} {r['rss'] / 2**20:12.0f} {t['py'] / 2**20:15.1f} "
                f"{r['run_cpu_s']:9.2f} {r['startup_cpu_s']:14.2f}"
            )
    for path, n in sizes:
        r = child(path, "marlin", False, False)
        print(
            f"{'marlin':8s} {n:9d} {r['rss'] / 2**20:12.0f} {'':15s} {r['run_cpu_s']:9.2f}"
            "   (reference path, numba not imported)"
        )
    for path, _ in sizes:
        path.unlink()


if __name__ == "__main__":
    main()
