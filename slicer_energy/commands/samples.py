"""``slicer-energy samples``: write the generated sample parts as STL."""

from __future__ import annotations

import argparse

from ._output import print_table
from ._parser import add_command
from .voxelize import SAMPLES

HELP = "write the sample parts (phone case, bracket, bionic bracket) as STL"
DESCRIPTION = (
    "Generate the study's sample parts with exact CSG and write them as binary STL: "
    + ", ".join(SAMPLES)
    + ". Any command that takes a PART also accepts these names directly."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "samples", HELP, DESCRIPTION, None, run)
    p.add_argument(
        "--out",
        default="samples",
        metavar="DIR",
        help="folder the STL files are written into, made if missing (default: ./samples)",
    )


def run(args: argparse.Namespace) -> int:
    from ..samples import sample_mesh, write_samples

    paths = write_samples(args.out)
    rows = []
    for name, path in zip(SAMPLES, paths, strict=True):
        m = sample_mesh(name)
        x, y, z = m.extents
        rows.append((str(path), f"{x:.1f} x {y:.1f} x {z:.1f} mm", f"{m.volume / 1000:.1f} cm³"))
    print_table(rows, header=("file", "size", "volume"))
    return 0
