"""``slicer-energy predict PART``: time, energy and material of one part by process."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import SlicerEnergyError
from ..predict import PROCESSES, fdm_record, predict_part, record
from ._numbers import add_max_memory
from ._output import print_json, print_table
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
  slicer-energy predict part.stl --supports --preset 0.15mm-quality --json
  slicer-energy predict part.stl --price-per-kwh 0.30 --grid-gco2-per-kwh 380
  slicer-energy predict part.stl --process sls                    one part alone in the P 390
  slicer-energy predict part.stl --process sls --copies 20        twenty copies share the job
  slicer-energy predict part.stl --process sls --fill --json      a full build, JSON record
  slicer-energy predict bracket.stl --process mls --variant high  EOS M 290, study's 'Max' case

FDM (the default process): the part is voxelised at the layer height, split per layer into
perimeters, solid/top/bridge/sparse infill, supports and skirt, timed with the printer's
accelerations and jerk and PrusaSlicer's minimum-layer-time slowdown, and the heaters,
electronics, steppers and fan are integrated over that timeline (the same electrical model
as 'slicer-energy gcode'). Presets mirror PrusaSlicer 2.5's MK3S profiles; accuracy against
PrusaSlicer is in the README (section 'FDM prediction').

Sintering: energy per part is the job's energy shared out: laser energy by scanned volume,
everything time-dependent (warm-up, heaters, gas, recoating, cool-down) by
build-height share. Machine numbers that are assumptions are listed in the README
(section 'Laser sintering').
"""


def print_record_table(rows: list[dict[str, Any]]) -> None:
    """The human table of :func:`~slicer_energy.predict.record` rows (``predict``, ``compare``)."""
    print_table(
        [
            [
                r["process"],
                r.get("case", ""),
                r["machine"],
                r["material"] or "",
                f"{r['time_s'] / 3600:.2f}",
                f"{r['energy_kwh']:.3f}",
                f"{r['job_energy_kwh']:.2f}",
                r["copies"],
                "" if r["utilisation"] is None else f"{r['utilisation']:.3f}",
                f"{r['material_g']:.1f}",
                "" if r["powder_waste_g"] is None else f"{r['powder_waste_g']:.1f}",
                "" if r["kwh_per_kg"] is None else f"{r['kwh_per_kg']:.1f}",
            ]
            for r in rows
        ],
        header=[
            "process",
            "case",
            "machine",
            "material",
            "job h",
            "kWh/part",
            "job kWh",
            "copies",
            "util.",
            "part g",
            "waste g",
            "kWh/kg",
        ],
    )


def _fdm_table(r: dict[str, Any]) -> None:
    t = r["time_s"]
    print(
        f"{r['machine']}, preset {r['case']}, {r['material']}: "
        f"{int(t // 3600)} h {int(t % 3600 // 60):02d} min in all "
        f"(printing {r['print_time_s'] / 60:.1f} min), filament {r['filament_m']:.2f} m = "
        f"{r['material_g']:.1f} g, energy {r['energy_kwh']:.3f} kWh at the plug"
    )
    rows = [
        [k, f"{r['by_phase_s'].get(k, 0.0) / 60:.1f}", f"{v:.4f}"] for k, v in r["by_phase"].items()
    ]
    print_table(rows, header=["phase", "min", "kWh"])
    print_table(
        [[k, f"{v:.4f}"] for k, v in r["by_component"].items()], header=["component", "kWh"]
    )
    fil = r["by_feature_filament_mm"]
    print_table(
        [[k, f"{v / 60:.1f}", f"{fil.get(k, 0.0) / 1000:.2f}"] for k, v in r["by_feature"].items()],
        header=["feature", "min", "filament m"],
    )
    if r["cost"] is not None:
        print(f"electricity cost: {r['cost']:.3f} (at {r['cost'] / r['energy_kwh']:.3f} per kWh)")
    if r["co2_g"] is not None:
        print(f"grid emissions: {r['co2_g']:.1f} g CO2e")


def run(args: argparse.Namespace) -> int:
    if args.copies is not None and args.copies < 1:
        raise SlicerEnergyError(f"--copies must be >= 1, got {args.copies}")
    for opt in ("price_per_kwh", "grid_gco2_per_kwh"):
        v = getattr(args, opt)
        if v is not None and v < 0:
            raise SlicerEnergyError(f"--{opt.replace('_', '-')} must be >= 0, got {v}")
    from ..samples import resolve_part

    loaded = resolve_part(args.part, args.units)
    fdm_opts: dict[str, Any] = {}
    if args.process == "fdm":
        fdm_opts = {
            "preset": args.preset,
            "infill_percent": args.infill,
            "supports": True if args.supports else None,
            "layer_height_mm": args.layer_height,
        }
    est = predict_part(
        loaded,
        args.process,
        machine=args.machine,
        material=args.material,
        copies=args.copies or 1,
        fill_build=args.fill,
        variant=args.variant,
        max_memory_gb=args.max_memory,
        **fdm_opts,
    )
    if est.process == "fdm":
        rec = fdm_record(est, args.price_per_kwh, args.grid_gco2_per_kwh)
        if args.json:
            print_json(rec)
        else:
            _fdm_table(rec)
        return 0
    rec = record(est)
    if args.json:
        print_json(rec)
    else:
        print_record_table([rec])
        if rec["by_phase"]:
            print(
                "per part, by phase (kWh): "
                + ", ".join(f"{k} {v:.3f}" for k, v in rec["by_phase"].items())
            )
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
        help="machine profile name or .toml path (default: prusa-mk3s for fdm, eosint-p390 "
        "for sls, eos-m290 for mls); FDM printers: prusa-mk3s, ender3-v2, or a calibrated profile "
        "written by 'slicer-energy calibrate' (name in calib/ or path)",
    )
    p.add_argument("--material", help="material (default: PA12 for sls, AlSi10Mg for mls)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--copies", type=int, help="copies of PART in one build (default: 1)")
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
        help="print settings preset (0.20mm-quality, 0.15mm-quality, 0.30mm-draft) or .toml path "
        "(default: 0.20mm-quality)",
    )
    f.add_argument("--infill", type=float, help="sparse infill density in %% (default: preset's)")
    f.add_argument("--supports", action="store_true", help="generate supports under overhangs")
    f.add_argument("--layer-height", type=float, help="layer height in mm (default: preset's)")
    f.add_argument("--price-per-kwh", type=float, help="electricity price, to report the cost")
    f.add_argument("--grid-gco2-per-kwh", type=float, help="grid emission factor, g CO2e/kWh")
    p.add_argument("--units", default="mm", help="length unit of the mesh file (default: mm)")
    add_max_memory(p)
    p.add_argument("--json", action="store_true", help="print one JSON record")
