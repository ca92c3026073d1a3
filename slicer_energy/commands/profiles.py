"""``slicer-energy profiles``: the printers, presets, materials and calibrated profiles a
name can refer to, and where each comes from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ProfileError
from ._output import print_json, print_table
from ._parser import add_command

HELP = "list printers, print presets, materials and calibrated profiles (and where they live)"
DESCRIPTION = (
    "Every name that --printer, --preset and --material accept, with its aliases and the file "
    "it comes from: shipped printers, print presets and materials, your calibrated profiles "
    "(written by 'slicer-energy calibrate' into your data folder) and the shipped calibrated "
    "examples. With --from, the presets inside a slicer config bundle instead."
)
EPILOG = """\
examples:
  slicer-energy profiles                          everything a name can refer to
  slicer-energy profiles --json                   the same as JSON
  slicer-energy profiles --from /usr/share/PrusaSlicer/profiles/PrusaResearch.ini
                                                  the printers, prints and filaments of a bundle;
                                                  use one as --printer 'BUNDLE.ini:NAME'

--printer also takes a .toml, a PrusaSlicer/SuperSlicer/OrcaSlicer .ini or .json, a 3MF
project saved with its settings, or a Klipper printer.cfg; --preset a .toml or a slicer
file; --material a slicer file with filament settings.
"""


def register(sub: Any) -> None:
    p = add_command(sub, "profiles", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument(
        "--from",
        dest="bundle",
        metavar="BUNDLE.ini",
        help="list the [printer:], [print:] and [filament:] presets of a slicer config bundle",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    rows = _bundle_rows(Path(args.bundle)) if args.bundle else _rows()
    if args.json:
        print_json(rows)
        return 0
    print_table(
        [[r["kind"], r["name"], ", ".join(r["aliases"]), r["description"]] for r in rows],
        header=["kind", "name", "aliases", "description"],
    )
    if not args.bundle:
        print()
        for label, folder in _folders():
            print(f"{label}: {folder}")
    return 0


def _folders() -> list[tuple[str, Path]]:
    from ..machine import machine_roots
    from ..resources import data_dir

    hw = data_dir("hardware")
    return [
        ("printer", machine_roots()[0][1]),
        ("preset", hw / "fdm-print"),
        ("material", hw / "fdm-material"),
        ("calibrated", machine_roots()[1][1]),
        ("calibrated example", machine_roots()[2][1]),
    ]


def _rows() -> list[dict[str, Any]]:
    from ..profiles import profile_index

    return [
        {
            "kind": kind,
            "name": e.name,
            "aliases": list(e.aliases),
            "description": e.description,
            "path": str(e.path),
        }
        for kind, folder in _folders()
        for e in profile_index(folder)
    ]


def _bundle_rows(path: Path) -> list[dict[str, Any]]:
    from ..slicer_config import KINDS, bundle_sections

    if not path.is_file():
        raise ProfileError(f"{path}: no such file")
    return [
        {"kind": kind, "name": name, "aliases": [], "description": "", "path": f"{path}:{name}"}
        for kind in KINDS
        for name in bundle_sections(path, kind)
    ]
