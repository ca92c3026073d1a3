"""Throughput and peak memory of parse + plan on >= 2M lines of real G-code.

Run: python benchmarks/gcode.py [../shared] [--lines 2000000]
Concatenates the corpus G-code files (decompressed) until the line target is reached,
then times, on one core: Python's own line iteration (the floor), the per-line parser
(the peer, measured in the same run), the vectorised parser, and parse+plan+energy for
each firmware planner.
Peak memory (tracemalloc, Python allocations incl. NumPy) for two file sizes shows
that the streaming pipeline does not grow with the file.
"""

from __future__ import annotations

import argparse
import gzip
import time
import tracemalloc
from pathlib import Path

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.parse import iter_chunks
from slicer_energy.machine import load_machine


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


def timed(fn):
    """(wall seconds, CPU seconds of this process, result): on a shared machine the
    CPU time is the fairer 'one core' figure, so both are printed."""
    t0, c0 = time.perf_counter(), time.process_time()
    r = fn()
    return time.perf_counter() - t0, time.process_time() - c0, r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "shared", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared")
    )
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--tmp", default="/tmp")
    a = ap.parse_args()
    big = Path(a.tmp) / "slicer_energy_bench_big.gcode"
    small = Path(a.tmp) / "slicer_energy_bench_small.gcode"
    n_big = build(Path(a.shared), a.lines, big)
    n_small = build(Path(a.shared), a.lines // 10, small)
    m = load_machine("ender3-v2")

    def py_iter():
        c = 0
        with big.open() as fh:
            for line in fh:
                c += line.startswith("G1 ")
        return c

    def parse_only():
        return sum(len(ch.moves) for ch, _ in iter_chunks(big))

    def parse(fast):
        return sum(len(ch.moves) for ch, _ in iter_chunks(big, fast=fast))

    rows = [("python: for line in file", *timed(py_iter)[:2])]
    w, c, n_moves = timed(lambda: parse(False))
    rows.append(("parse, line loop (peer)", w, c))
    rows.append(("parse, vectorised", *timed(lambda: parse(True))[:2]))
    for mode in ("marlin", "klipper"):
        w, c, _ = timed(lambda mode=mode: analyze_file(big, m, mode=mode, keep_rows=False))
        rows.append((f"parse+plan+energy {mode}", w, c))
    print(f"file: {n_big} lines, {n_moves} moves")
    print(f"{'step':28s} {'wall s':>7s} {'cpu s':>7s} {'lines/cpu-s':>12s} {'vs line loop':>12s}")
    loop_c = rows[1][2]
    for name, w, c in rows:
        print(f"{name:28s} {w:7.2f} {c:7.2f} {n_big / c:12.0f} {loop_c / c:12.2f}")
    print("\npeak Python memory (tracemalloc), marlin planner, streaming:")
    for path, n in ((small, n_small), (big, n_big)):
        tracemalloc.start()
        analyze_file(path, m, mode="marlin", keep_rows=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {n:>9d} lines: {peak / 2**20:7.1f} MiB")
    big.unlink()
    small.unlink()


if __name__ == "__main__":
    main()
