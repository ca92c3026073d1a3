"""Voxeliser benchmark: ours vs trimesh and Open3D, same machine, same run, same cell centres.

For each part (the three sample parts and a ≥1 M-triangle sphere):

* trimesh ``mesh.voxelized(pitch).fill()`` at the finest pitch (halving from 2 mm) where it
  is predicted to finish within ``--trimesh-budget`` seconds, and ours at that same pitch;
* Open3D's Embree ray casting ``RaycastingScene.compute_occupancy`` at exactly our cell
  centres, slab by slab, at ``--pitch`` (default 0.2 mm), and ours at that pitch;
* ours alone at 0.1 mm (layer height 0.1 mm).

Each measurement runs in a forked child so that its peak resident memory (VmHWM after a
reset) is its own. Reports time, speed-up ratios, peak memory relative to the output grid
(1 byte per cell) and each method's volume error against the exact mesh volume.

    python benchmarks/voxelize.py [--pitch 0.2] [--trimesh-budget 60] [--parts ...]

Needs ``open3d-cpu`` (``pip install '.[bench]'``; Debian's ``libusb-1.0-0``) for the Open3D
column; without it that column is skipped.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

import numpy as np
import trimesh

from slicer_energy.samples import sample_mesh
from slicer_energy.voxelize import grid_for, voxelize


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _measure(fn, *args):
    """Run fn(*args) in a forked child; return (result, seconds, peak extra MB)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def target():
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM to the current RSS
        except OSError:
            pass
        base = _rss_kb("VmRSS")
        t0 = time.perf_counter()
        res = fn(*args)
        dt = time.perf_counter() - t0
        child.send((res, dt, (_rss_kb("VmHWM") - base) / 1024))
        child.close()

    p = ctx.Process(target=target)
    p.start()
    out = parent.recv()
    p.join()
    return out


def ours(mesh, pitch_xy, pitch_z):
    g = voxelize(mesh, pitch_xy, pitch_z, xp="numpy")
    return g.volume_mm3(), g.shape


def trimesh_fill(mesh, pitch):
    v = mesh.voxelized(pitch).fill()
    return float(v.filled_count) * pitch**3, tuple(v.shape)


def open3d_occupancy(mesh, pitch_xy, pitch_z):
    import open3d as o3d

    origin, (nz, ny, nx) = grid_for(mesh.bounds, pitch_xy, pitch_z)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.asarray(mesh.vertices, dtype=np.float32)),
        o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.uint32)),
    )
    xs = origin[0] + (np.arange(nx) + 0.5) * pitch_xy
    ys = origin[1] + (np.arange(ny) + 0.5) * pitch_xy
    X, Y = np.meshgrid(xs, ys)
    count = 0
    for k in range(nz):  # slab by slab (one layer) keeps memory bounded
        z = origin[2] + (k + 0.5) * pitch_z
        pts = np.stack([X.ravel(), Y.ravel(), np.full(X.size, z)], axis=1).astype(np.float32)
        occ = scene.compute_occupancy(o3d.core.Tensor(pts)).numpy()
        count += int(occ.sum())
    return count * pitch_xy * pitch_xy * pitch_z, (nz, ny, nx)


def parts(names):
    out = {}
    for n in names:
        if n == "sphere_1M":
            m = trimesh.creation.icosphere(subdivisions=8, radius=30.0)  # 1.31 M triangles
            m.apply_translation(-m.bounds[0])
            out[n] = m
        else:
            out[n] = sample_mesh(n)
    return out


def main() -> int:  # noqa: PLR0915 - one benchmark script, a straight run of timed steps
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pitch", type=float, default=0.2, help="pitch for the Open3D comparison")
    ap.add_argument("--trimesh-budget", type=float, default=60.0, help="seconds per trimesh run")
    ap.add_argument(
        "--parts", nargs="+", default=["phone_case", "bracket", "bracket_bionic", "sphere_1M"]
    )
    ap.add_argument("--no-open3d", action="store_true")
    args = ap.parse_args()
    try:
        import open3d  # noqa: F401

        have_o3d = not args.no_open3d
    except ImportError:
        have_o3d = False
        print("open3d not installed: Open3D column skipped", file=sys.stderr)

    print(
        f"# machine: {os.cpu_count()} CPUs; numpy {np.__version__}; trimesh {trimesh.__version__}"
    )
    rows = []
    for name, mesh in parts(args.parts).items():
        exact = float(mesh.volume)

        def err(v: float, exact: float = exact) -> float:
            return (v - exact) / exact * 100

        row = {"part": name, "triangles": len(mesh.faces)}

        # trimesh at the finest pitch that fits the budget (time ~ 1/pitch^2).
        pitch, t_last = 2.0, None
        while True:
            if t_last is not None and t_last * 4 > args.trimesh_budget:
                break
            (tv, _), t_tm, m_tm = _measure(trimesh_fill, mesh, pitch)
            (ov, oshape), t_us, m_us = _measure(ours, mesh, pitch, pitch)
            row.update(
                tm_pitch=pitch,
                tm_s=t_tm,
                tm_err=err(tv),
                tm_mb=m_tm,
                us_tm_s=t_us,
                us_tm_err=err(ov),
            )
            t_last = t_tm
            pitch /= 2
            if pitch < 0.1:
                break

        p = args.pitch
        (ov, shape), t_us, m_us = _measure(ours, mesh, p, p)
        cells = int(np.prod(shape))
        row.update(
            o_pitch=p, cells=cells, us_s=t_us, us_err=err(ov), us_mb=m_us, grid_mb=cells / 2**20
        )
        if have_o3d:
            (v3, _), t_o3, m_o3 = _measure(open3d_occupancy, mesh, p, p)
            row.update(o3_s=t_o3, o3_err=err(v3), o3_mb=m_o3)
        (v01, s01), t01, m01 = _measure(ours, mesh, 0.1, 0.1)
        row.update(
            us01_s=t01,
            us01_err=err(v01),
            us01_cells=int(np.prod(s01)),
            us01_mb=m01,
            grid01_mb=int(np.prod(s01)) / 2**20,
        )
        rows.append(row)
        print(row, file=sys.stderr, flush=True)

    print("\n## trimesh voxelized(pitch).fill() vs ours at the same pitch")
    print(
        "| part | triangles | pitch mm | trimesh s | ours s | speed-up | trimesh vol. err "
        "| ours vol. err |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['part']} | {r['triangles']:,} | {r['tm_pitch']:g} | {r['tm_s']:.2f} | "
            f"{r['us_tm_s']:.3f} | {r['tm_s'] / r['us_tm_s']:.0f}x | {r['tm_err']:+.2f} % | "
            f"{r['us_tm_err']:+.3f} % |"
        )
    if have_o3d:
        print(
            f"\n## Open3D RaycastingScene.compute_occupancy vs ours, same cell centres, "
            f"pitch {args.pitch:g} mm"
        )
        print(
            "| part | cells | Open3D s | ours s | speed-up | Open3D Mcells/s | ours Mcells/s "
            "| Open3D vol. err | ours vol. err | ours peak / grid |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['part']} | {r['cells'] / 1e6:.1f} M | {r['o3_s']:.2f} | {r['us_s']:.3f} | "
                f"{r['o3_s'] / r['us_s']:.0f}x | {r['cells'] / r['o3_s'] / 1e6:.1f} | "
                f"{r['cells'] / r['us_s'] / 1e6:.0f} | {r['o3_err']:+.3f} % | "
                f"{r['us_err']:+.3f} % | {r['us_mb'] / r['grid_mb']:.2f} |"
            )
    print("\n## ours at 0.1 mm (layer height 0.1 mm)")
    print("| part | cells | seconds | Mcells/s | vol. err | peak MB | grid MB | peak / grid |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['part']} | {r['us01_cells'] / 1e6:.0f} M | {r['us01_s']:.2f} | "
            f"{r['us01_cells'] / r['us01_s'] / 1e6:.0f} | {r['us01_err']:+.4f} % | "
            f"{r['us01_mb']:.0f} | {r['grid01_mb']:.0f} | {r['us01_mb'] / r['grid01_mb']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
