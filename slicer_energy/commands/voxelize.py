"""``slicer-energy voxelize``: solid voxel grid of a part, with its volume error."""

from __future__ import annotations

import argparse
import sys
import time

from ..backend import CHOICES
from ._numbers import add_max_memory, positive_float
from ._output import print_json, print_table
from ._parser import add_command

SAMPLES = ("phone_case", "bracket", "bracket_bionic")  # kept in step with samples.SAMPLES


HELP = "voxelise a part into print layers and compare with its exact volume"
DESCRIPTION = (
    "Load a mesh (STL, 3MF, OBJ, PLY) or a sample part, place it on the build plate and "
    "sample it at cell centres on a grid of xy pitch x layer height. Prints the grid "
    "shape, the voxel volume, the exact mesh volume and their difference."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "voxelize",
        HELP,
        DESCRIPTION,
        "examples:\n"
        "  slicer-energy voxelize phone_case\n"
        "  slicer-energy voxelize part.stl --pitch 0.1 --layer-height 0.2 --json\n"
        "  slicer-energy voxelize big.stl --units in --backend cupy\n"
        f"sample parts: {', '.join(SAMPLES)}",
        run,
    )
    p.add_argument("part", help="mesh file or sample part name")
    p.add_argument("--pitch", type=float, default=0.1, help="xy cell size in mm (default 0.1)")
    p.add_argument(
        "--layer-height", type=float, default=0.2, help="z cell size = layer height in mm (0.2)"
    )
    p.add_argument(
        "--units",
        default="mm",
        choices=["mm", "cm", "m", "in"],
        help="length unit of the file (default mm)",
    )
    p.add_argument(
        "--backend",
        choices=CHOICES,
        default=None,
        help="array backend (default: $SLICER_ENERGY_BACKEND or auto)",
    )
    p.add_argument(
        "--memory-mb",
        type=positive_float,
        default=None,
        help="working-memory budget besides the output grid (default: auto)",
    )
    add_max_memory(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..backend import get_xp
    from ..errors import SettingsError
    from ..samples import resolve_part
    from ..voxelize import voxelize

    if not (0 < args.pitch <= 50 and 0 < args.layer_height <= 50):
        raise SettingsError(
            f"--pitch ({args.pitch}) and --layer-height ({args.layer_height}) must be in (0, 50] mm"
        )
    xp = get_xp(args.backend)
    part = resolve_part(args.part, units=args.units)
    for w in part.warnings:
        print(f"warning: {w}", file=sys.stderr)
    t0 = time.perf_counter()
    grid = voxelize(
        part,
        args.pitch,
        args.layer_height,
        xp=xp,
        memory_budget_mb=args.memory_mb,
        max_memory_gb=args.max_memory,
    )
    seconds = time.perf_counter() - t0
    vox = grid.volume_mm3()
    exact = part.volume_mm3
    rel = (vox - exact) / exact
    if args.json:
        print_json(
            {
                "part": args.part,
                "shape": list(grid.shape),
                "pitch_xy_mm": grid.pitch_xy,
                "pitch_z_mm": grid.pitch_z,
                "voxel_volume_mm3": vox,
                "mesh_volume_mm3": exact,
                "relative_error": rel,
                "seconds": seconds,
                "backend": grid.info["backend"],
                "warnings": part.warnings,
            }
        )
        return 0
    nz, ny, nx = grid.shape
    print_table(
        [
            ("part", args.part),
            ("grid (layers x rows x cols)", f"{nz} x {ny} x {nx} = {nz * ny * nx:,} cells"),
            ("pitch xy / layer height", f"{grid.pitch_xy:g} / {grid.pitch_z:g} mm"),
            ("voxel volume", f"{vox / 1000:.3f} cm³"),
            ("exact mesh volume", f"{exact / 1000:.3f} cm³"),
            ("difference", f"{rel * 100:+.3f} %"),
            ("time", f"{seconds:.3f} s ({grid.info['backend']})"),
        ]
    )
    return 0
