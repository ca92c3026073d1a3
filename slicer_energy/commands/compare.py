"""``slicer-energy compare PART``: one part made by FDM, SLS, MLS and conventionally."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..baselines import IM_MACHINE_TYPES, baseline_part
from ..costs import Costs
from ..errors import SettingsError, SlicerEnergyError
from ..predict import predict_part
from ..record import record as make_record
from ._costs import add_cost_options, costs_from_args
from ._numbers import add_max_memory
from ._parser import add_command
from .predict import print_record_table

HELP = "one part by FDM, SLS, MLS, injection moulding and casting, side by side"
DESCRIPTION = (
    "Time, energy per part and material per part of PART made by each process: "
    "the numbers behind 'laser sintering needs far more energy than home printing'."
)

EPILOG = """\
examples:
  slicer-energy compare phone_case.stl           FDM, SLS alone/full, MLS, moulding, casting
  slicer-energy compare part.stl --json          a list of records, each with a 'process' key
  slicer-energy compare part.stl --mould-run 10000   add the mould's energy over 10,000 parts

Rows: fdm (when the FDM model is installed), sls with one part and with a full build
(PA12, EOSINT P 390), mls low and high (AlSi10Mg, EOS M 290), injection moulding by
machine type (the part's volume in polycarbonate), and aluminium casting + machining
(the part's volume in cast aluminium; gas for melting, electricity for casting and
machining, per kg of finished part): the same twins and basis the LCA uses.
"""


def compare_records(
    loaded: Any,
    mould_run: int | None = None,
    include_metal: bool = True,
    max_memory_gb: float | None = None,
    costs: Costs | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """One record per process and case, priced alike (the table and --json of ``compare``)."""

    def record(est: Any) -> dict[str, Any]:
        return make_record(est, costs, source=source)

    rows: list[dict[str, Any]] = []
    mem = {"max_memory_gb": max_memory_gb}
    try:
        rows.append(record(predict_part(loaded, "fdm", **mem)))
    except SettingsError as exc:  # e.g. larger than the printer: no FDM row, say why
        print(f"fdm: skipped: {exc}", file=sys.stderr)
    except SlicerEnergyError as exc:
        if "not installed" not in str(exc):
            raise
    sls_one = record(predict_part(loaded, "sls", copies=1, **mem))
    sls_one["case"] = "single part"
    sls_full = record(predict_part(loaded, "sls", fill_build=True, **mem))
    sls_full["case"] = "full build"
    rows += [sls_one, sls_full]
    if include_metal:
        for variant in ("low", "high"):
            r = record(predict_part(loaded, "mls", variant=variant, **mem))
            r["case"] = f"variant {variant}"
            rows.append(r)
    for mt in IM_MACHINE_TYPES:
        rows.append(record(baseline_part(loaded, "injection-moulding", mt, mould_run)))
    if include_metal:
        rows.append(record(baseline_part(loaded, "casting")))
    return rows


def run(args: argparse.Namespace) -> int:
    from ..samples import resolve_part

    loaded = resolve_part(args.part, args.units)
    costs = costs_from_args(args)
    rows = compare_records(
        loaded, args.mould_run, not args.no_metal, args.max_memory, costs, args.part
    )
    if args.json:
        from ._output import print_json

        print_json(rows)
    else:
        print_record_table(rows)
        if costs.price_per_kwh is not None or costs.filament_price_per_kg is not None:
            print(
                f"cost: electricity at {costs.price_per_kwh}/kWh, FDM filament at "
                f"{costs.filament_price_per_kg}/kg {costs.currency or ''}; casting's gas not priced"
            )
        if costs.gco2_per_kwh is not None:
            mix = costs.grid_id or "given"
            print(f"kg CO2e: electricity at {costs.gco2_per_kwh:.0f} g/kWh ({mix})")
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "compare", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("part", metavar="PART", help="mesh file (STL/3MF/OBJ/PLY) or sample name")
    p.add_argument("--units", default="mm", help="length unit of the mesh file (default: mm)")
    p.add_argument(
        "--mould-run", type=int, help="spread the mould's energy over this many moulded parts"
    )
    p.add_argument("--no-metal", action="store_true", help="leave out MLS and casting rows")
    add_cost_options(p)
    add_max_memory(p)
    p.add_argument(
        "--json", action="store_true", help="print a JSON list of records (schema: record-1.json)"
    )
