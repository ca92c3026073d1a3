"""A batch job's rows: the prediction's record (:mod:`slicer_energy.record`), once per
electricity mix of the sweep, flattened into Parquet columns.

Columns carry the record's own names: its scalars as they are (``energy_kwh``,
``time_s``), nested numbers by path (``by_phase_kwh.print``, ``sintering.utilisation``,
``cost.total``, ``grid.id``), and the whole record in ``record_json``, so that a row
read back is the record ``predict --json`` prints for the same settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..costs import Costs, grid_kg_co2e_per_kwh
from ..estimate import Estimate
from ..record import record

SCALARS = (
    "schema_version",
    "machine",
    "material",
    "case",
    "source",
    "time_s",
    "print_time_s",
    "energy_kwh",
    "material_g",
    "waste_g",
    "filament_mm",
    "kwh_per_kg",
    "co2_kg",
)
NESTED = ("by_phase_s", "by_phase_kwh", "by_component_kwh", "cost", "grid")
SINTERING = ("job_energy_kwh", "copies", "utilisation", "packing_density")


def costs_per_grid(costs: Costs, grid_ids: Sequence[str]) -> list[Costs]:
    """``costs`` once per electricity mix of the sweep's ``grid`` axis (once without one)."""
    if not grid_ids:
        return [costs]
    factors = grid_kg_co2e_per_kwh(grid_ids)
    return [replace(costs, grid_id=g, gco2_per_kwh=1000.0 * f) for g, f in factors.items()]


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """One Parquet row of a record (see the module's docstring for the column names)."""
    row = {k: rec[k] for k in SCALARS}
    for key in NESTED:
        for k, v in (rec[key] or {}).items():
            row[f"{key}.{k}"] = v
    for k in SINTERING:
        row[f"sintering.{k}"] = (rec["sintering"] or {}).get(k)
    row["record_json"] = json.dumps(rec, default=str, sort_keys=True)
    return row


def record_rows(
    est: Estimate, base: dict[str, Any], variants: Sequence[Costs], source: str
) -> list[dict[str, Any]]:
    """The rows of one finished job: one per electricity mix in ``variants``."""
    return [
        {**base, "set_grid": c.grid_id, **flatten(record(est, c, source=source))} for c in variants
    ]
