"""Batch throughput on a Dask LocalCluster: 1 vs 2 workers, grid reuse vs none, vs a plain loop.

Parts: generated solids of varied size (boxes, cylinders, spheres, tori, 5..80 mm) plus
the sample parts (phone case, bracket, bionic bracket). Sweep: SLS copies 1..16 and a
full build; MLS copies 1..4 and full build × the three energy variants. The peer is what
a user would write without this module: a serial loop calling ``predict_part`` per job
(every job loads and voxelises its part), measured on a subset in the same run.

    python benchmarks/batch.py                 # 60 parts × 18 settings = 1080 jobs
    python benchmarks/batch.py --parts 20      # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from slicer_energy.batch.run import (
    load_sweep,
    make_client,
    part_spec,
    plan_jobs,
    read_results,
    run_batch,
)
from slicer_energy.predict import predict_part
from slicer_energy.samples import SAMPLES, resolve_part

SWEEP = """\
process = ["sls", "mls"]
[sls]
copies = [1, 2, 4, 8, 16, "fill"]
[mls]
copies = [1, 2, 4, "fill"]
variant = ["nominal", "low", "high"]
"""


def make_parts(folder: Path, n: int, seed: int = 1) -> list[str]:
    """``n`` STL files of varied shape and size (mm), deterministic."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        s = float(rng.uniform(5, 80))
        kind = i % 4
        if kind == 0:
            m = trimesh.creation.box(s * rng.uniform(0.3, 1.0, 3))
        elif kind == 1:
            m = trimesh.creation.cylinder(radius=s / 4, height=s * rng.uniform(0.2, 1.0))
        elif kind == 2:
            m = trimesh.creation.icosphere(subdivisions=3, radius=s / 3)
        else:
            m = trimesh.creation.torus(major_radius=s / 3, minor_radius=s / 10)
        p = folder / f"gen{i:03d}.stl"
        m.export(p)
        paths.append(str(p))
    return paths


def timed_batch(parts, sweep, out: Path, workers: int, reuse: bool) -> tuple[float, int, int]:
    client, cluster = make_client("local", workers)
    try:
        client.run(lambda: None)  # workers up before the clock starts
        t0 = time.perf_counter()
        res = run_batch(parts, sweep, out, client, reuse_grids=reuse, progress=None)
        dt = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    assert res.computed == res.total, res
    return dt, res.computed, res.errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=60, help="parts in all (3 are samples)")
    ap.add_argument("--loop-jobs", type=int, default=60, help="jobs timed in the serial loop")
    ap.add_argument(
        "--no-reuse-workers",
        type=int,
        nargs="*",
        default=[1],
        help="worker counts to also run without grid reuse (default: 1)",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sw = tmp / "sweep.toml"
        sw.write_text(SWEEP)
        sweep = load_sweep(sw)
        srcs = make_parts(tmp, args.parts - len(SAMPLES)) + list(SAMPLES)
        parts = [part_spec(s) for s in srcs]
        jobs = plan_jobs(parts, sweep)
        print(f"{len(parts)} parts × {len(jobs) // len(parts)} settings = {len(jobs)} jobs")
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")

        # Peer: a serial loop over predict_part (load + voxelise inside every job).
        step = max(1, len(jobs) // args.loop_jobs)
        sample = jobs[::step][: args.loop_jobs]
        t0 = time.perf_counter()
        for j in sample:
            st = dict(j.settings)
            c = st.get("copies", "1")
            predict_part(
                resolve_part(parts[j.part_index].source),
                j.process,
                copies=1 if c == "fill" else int(c),
                fill_build=c == "fill",
                variant=st.get("variant", "nominal"),
            )
        loop_rate = len(sample) / (time.perf_counter() - t0)

        rows = []
        configs = [(1, True), (2, True)] + [(w, False) for w in args.no_reuse_workers]
        for workers, reuse in configs:
            out = tmp / f"out-{workers}-{reuse}"
            dt, n, err = timed_batch(parts, sweep, out, workers, reuse)
            rows.append((workers, reuse, dt, n, err))
            assert len(read_results(out)) == len(jobs)
            print(f"  {workers} worker(s), reuse {reuse}: {dt:.1f} s, {err} error rows")
        # Reused grids must not change a single number.
        a = read_results(tmp / "out-1-True").set_index("job_id").sort_index()
        for w in args.no_reuse_workers:
            b = read_results(tmp / f"out-{w}-False").set_index("job_id").loc[a.index]
            diff = (a["energy_kwh"] - b["energy_kwh"]).abs().max()
            print(f"  largest kWh difference, reuse vs none ({w} worker(s)): {diff:.3g}")
        base = {r: dt for w, r, dt, _, _ in rows if w == 1}
        print()
        print("workers  grid reuse  seconds  jobs/s  speed-up vs 1 worker  vs serial loop")
        for w, r, dt, n, _err in rows:
            rate = n / dt
            print(
                f"{w:>7}  {'yes' if r else 'no':>10}  {dt:7.1f}  {rate:6.1f}  "
                f"{base[r] / dt:20.2f}  {rate / loop_rate:13.2f}"
            )
        print(f"serial loop over predict_part ({len(sample)} jobs): {loop_rate:.1f} jobs/s")
        for w in args.no_reuse_workers:
            t_re = next(dt for ww, r, dt, _, _ in rows if ww == w and r)
            t_no = next(dt for ww, r, dt, _, _ in rows if ww == w and not r)
            print(
                f"{w} worker(s): reusing voxel grids saves {100 * (1 - t_re / t_no):.0f} % of time"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
