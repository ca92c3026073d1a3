"""``slicer-energy predict PART``: time, energy and material of one part by process."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import SlicerEnergyError
from ..predict import PROCESSES, predict_part
from ..record import record
from ._costs import add_cost_options, costs_from_args, default_printer, print_costs
from ._numbers import add_max_memory
from ._output import hms, print_json, print_table
from ._parser import add_command

HELP = "time, energy and material of a part by process (FDM, SLS, MLS)"
DESCRIPTION = (
    "Predict print time, electrical energy at the plug and material of PART. For "
    "laser sintering the whole build job is modelled (warm-up, layers, cool-down) "
    "and its energy shared among the parts in it, so energy per part depends on "
    "how full the machine is (--copies, --fill)."
)

EPILOG = """\
examples:
  slicer-energy predict phone_case                                 FDM on a Prusa MK3S, 0.20 mm
  slicer-energy predict part.stl --printer ender3-v2 --infill 20   another printer, 20 % infill
  slicer-energy predict part.stl --copies 4                       a plate of four, per copy
  slicer-energy predict part.stl --supports --preset 0.15mm-quality --json
  slicer-energy predict part.stl --price-per-kwh 0.30 --currency EUR --grid DE
  slicer-energy predict part.stl --process sls --price-per-kwh 0.20 --grid 380
  slicer-energy predict part.stl --process sls                    one part alone in the P 390
  slicer-energy predict part.stl --process sls --copies 20        twenty copies share the job
  slicer-energy predict part.stl --process sls --fill --json      a full build, JSON record
  slicer-energy predict bracket.stl --process mls --variant high  EOS M 290, study's 'Max' case

FDM (the default process): the part is voxelised at the layer height, split per layer into
perimeters, solid/top/bridge/sparse infill, supports and skirt, timed with the printer's
accelerations and jerk and PrusaSlicer's minimum-layer-time slowdown, and the heaters,
electronics, steppers and fan are integrated over that timeline (the same electrical model
as 'slicer-energy gcode'). Presets mirror PrusaSlicer 2.5's MK3S profiles; accuracy against
PrusaSlicer is in docs/fdm.md.

Cost and CO2e (every process, and gcode, compare, batch): --price-per-kwh, --currency,
--filament-price-per-kg, --grid; their defaults, and the default --printer, come from a TOML
file, $SLICER_ENERGY_CONFIG or config.toml in the user config directory
(~/.config/slicer-energy/ on Linux):

  printer = "ender3-v2"
  price_per_kwh = 0.32
  currency = "EUR"
  filament_price_per_kg = 22.0
  grid = "DE"              # or a number, g CO2e/kWh

Sintering: energy per part is the job's energy shared out: laser energy by scanned volume,
everything time-dependent (warm-up, heaters, gas, recoating, cool-down) by
build-height share. Machine numbers that are assumptions are listed in docs/sintering.md.
"""


def print_record_table(rows: list[dict[str, Any]]) -> None:
    """The human table of :func:`~slicer_energy.record.record` rows (``predict``, ``compare``)."""
    priced = any(r["cost"] is not None for r in rows)
    emitted = any(r["co2_kg"] is not None for r in rows)

    def row(r: dict[str, Any]) -> list[Any]:
        sint = r["sintering"] or {}
        util = sint.get("utilisation")
        cells = [
            r["process"],
            r["case"],
            r["machine"],
            r["material"] or "",
            hms(r["time_s"]),
            f"{r['energy_kwh']:.3f}",
            f"{sint['job_energy_kwh']:.2f}" if sint else "",
            sint.get("copies", ""),
            "" if util is None else f"{util:.3f}",
            f"{r['material_g']:.1f}",
            "" if r["waste_g"] is None else f"{r['waste_g']:.1f}",
            "" if r["kwh_per_kg"] is None else f"{r['kwh_per_kg']:.1f}",
        ]
        if priced:
            cells.append("" if r["cost"] is None else f"{r['cost']['total']:.3f}")
        if emitted:
            cells.append("" if r["co2_kg"] is None else f"{r['co2_kg']:.4f}")
        return cells

    header = ["process", "case", "machine", "material", "job h:mm:ss", "kWh/part", "job kWh"]
    header += ["copies", "util.", "part g", "waste g", "kWh/kg"]
    print_table(
        [row(r) for r in rows],
        header=header + ["cost"] * priced + ["kg CO2e"] * emitted,
    )


def print_fdm_record(r: dict[str, Any]) -> None:
    """The human tables of an FDM record (``predict`` on a part, ``gcode`` on a file)."""
    fdm = r["fdm"]
    plate = fdm.get("plate")
    if plate:
        cols, rows = plate["grid"]
        print(
            f"plate of {plate['copies']} copies ({cols} x {rows}): {hms(plate['job_time_s'])} in "
            f"all (motion {hms(plate['job_print_time_s'])}), {plate['job_material_g']:.1f} g, "
            f"{plate['job_energy_kwh']:.3f} kWh; per copy:"
        )
    print(
        f"{r['machine']}, {r['case'] or 'G-code'}, {r['material'] or 'filament'}: "
        f"{hms(r['time_s'])} in all (motion {hms(r['print_time_s'])}), filament "
        f"{r['filament_mm'] / 1000:.2f} m = {r['material_g']:.1f} g, energy "
        f"{r['energy_kwh']:.3f} kWh at the plug"
    )
    print_table(
        [[k, hms(r["by_phase_s"].get(k, 0.0)), f"{v:.4f}"] for k, v in r["by_phase_kwh"].items()],
        header=["phase", "h:mm:ss", "kWh"],
    )
    print()
    print_table(
        [[k, f"{v:.4f}"] for k, v in r["by_component_kwh"].items()], header=["component", "kWh"]
    )
    print()
    fil = fdm["filament_by_feature_mm"]
    print_table(
        [
            [k, hms(v), f"{fil.get(k, 0.0) / 1000:.2f}"]
            for k, v in sorted(fdm["by_feature_s"].items(), key=lambda kv: -kv[1])
        ],
        header=["feature", "h:mm:ss", "filament m"],
    )
    print_costs(r)


def run(args: argparse.Namespace) -> int:
    if args.copies is not None and args.copies < 1:
        raise SlicerEnergyError(f"--copies must be >= 1, got {args.copies}")
    from ..samples import resolve_part

    costs = costs_from_args(args)
    loaded = resolve_part(args.part, args.units)
    fdm_opts: dict[str, Any] = {}
    machine = args.machine
    if args.process == "fdm":
        machine = default_printer(machine, None)
        fdm_opts = {
            "preset": args.preset,
            "infill_percent": args.infill,
            "supports": True if args.supports else None,
            "layer_height_mm": args.layer_height,
        }
    est = predict_part(
        loaded,
        args.process,
        machine=machine,
        material=args.material,
        copies=args.copies or 1,
        fill_build=args.fill,
        variant=args.variant,
        max_memory_gb=args.max_memory,
        **fdm_opts,
    )
    rec = record(est, costs, source=args.part)
    for w in rec["warnings"]:  # on stderr, so that --json stays parseable
        print(f"slicer-energy: warning: {w}", file=sys.stderr)
    if args.json:
        print_json(rec)
    elif est.process == "fdm":
        print_fdm_record(rec)
    else:
        print_record_table([rec])
        if rec["by_phase_kwh"]:
            print(
                "per part, by phase (kWh): "
                + ", ".join(f"{k} {v:.3f}" for k, v in rec["by_phase_kwh"].items())
            )
        print_costs(rec)
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "predict", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("part", metavar="PART", help="mesh file (STL/3MF/OBJ/PLY) or sample name")
    p.add_argument(
        "--process", choices=PROCESSES, default="fdm", help="process model (default: fdm)"
    )
    p.add_argument(
        "--machine",
        "--printer",
        "--profile",
        dest="machine",
        help="machine: a name or alias ('slicer-energy profiles' lists them, your calibrated "
        "profiles included), a .toml, a slicer .ini/.json/.3mf or a Klipper printer.cfg "
        "(default: the config file's printer for fdm, else prusa-mk3s; eosint-p390 for sls, "
        "eos-m290 for mls)",
    )
    p.add_argument(
        "--material",
        help="material: PLA, PETG, ABS, ASA, PA, TPU or a slicer filament file for fdm "
        "(default: the preset's PLA); PA12 for sls, AlSi10Mg for mls (the defaults)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--copies",
        type=int,
        help="copies of PART in one build (default: 1); FDM: one plate, arranged and printed "
        "layer by layer as PrusaSlicer's --duplicate, figures per copy and for the plate",
    )
    g.add_argument("--fill", action="store_true", help="as many copies as fit one build")
    p.add_argument(
        "--variant",
        choices=("nominal", "low", "high"),
        default="nominal",
        help="mls: the study's low/high energy variant (default: nominal)",
    )
    f = p.add_argument_group("FDM options")
    f.add_argument(
        "--preset",
        default="0.20mm-quality",
        help="print settings: a preset name (0.20mm-quality, 0.15mm-quality, 0.30mm-draft), "
        "a .toml, or a slicer .ini/.json/.3mf with print settings (default: %(default)s)",
    )
    f.add_argument("--infill", type=float, help="sparse infill density in %% (default: preset's)")
    f.add_argument("--supports", action="store_true", help="generate supports under overhangs")
    f.add_argument("--layer-height", type=float, help="layer height in mm (default: preset's)")
    p.add_argument("--units", default="mm", help="length unit of the mesh file (default: mm)")
    add_cost_options(p)
    add_max_memory(p)
    p.add_argument(
        "--json", action="store_true", help="print one JSON record (schema: record-1.json)"
    )
