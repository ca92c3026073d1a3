"""The plugin's estimate of one file: the CLI's record, and the few numbers the UI shows.

:func:`estimate_file` runs what ``slicer-energy gcode --json`` runs (``load_machine``,
``analyze_file``, :func:`slicer_energy.record.record`), priced with the plugin's settings
through :mod:`slicer_energy.costs`, so the plugin and the CLI give the same record.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...costs import Costs, cost_fields, parse_grid


def estimate_file(path: str | Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The record of the G-code at ``path`` for the plugin's ``settings`` (``printer``,
    ``price_per_kwh``, ``currency``, ``grid``) under ``record``, beside the numbers the file
    list and the tab show."""
    from ...gcode.analyze import analyze_file
    from ...machine import load_machine
    from ...record import record

    machine = load_machine(settings["printer"])
    res = analyze_file(str(path), machine, keep_rows=False, timeline=False)
    rec = record(res.to_estimate(machine), plugin_costs(settings), gcode=res, source=str(path))
    shown = {
        "printer": rec["machine"],
        "mode": res.mode,
        "time_s": rec["time_s"],
        "print_time_s": rec["print_time_s"],
        "energy_kwh": rec["energy_kwh"],
        "filament_g": rec["material_g"],
        "warnings": rec["warnings"],
    }
    return {**shown, **_money(rec), "record": rec}


def costs(energy_kwh: float, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Cost and CO2e of ``energy_kwh`` (a job's measured energy) at the settings' price and
    grid, as the CLI's record computes them."""
    return _money(cost_fields(energy_kwh, None, plugin_costs(settings)))


def plugin_costs(settings: Mapping[str, Any]) -> Costs:
    """The plugin's price, currency and grid as the CLI's :class:`~slicer_energy.costs.Costs`."""
    grid_id, gco2 = _grid(str(settings["grid"]))
    return Costs(
        price_per_kwh=float(settings["price_per_kwh"]),
        currency=str(settings["currency"]),
        grid_id=grid_id,
        gco2_per_kwh=gco2,
    )


def grid_g_per_kwh(grid: str | float) -> float:
    """g CO2e per kWh of ``grid``: a number (g/kWh) or an electricity mix id (``DE``)."""
    return _grid(str(grid))[1]


@lru_cache(maxsize=16)
def _grid(grid: str) -> tuple[str | None, float]:
    return parse_grid(grid, "plugin setting grid")


def _money(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The record's cost and CO2e as the plugin's flat fields."""
    cost, grid = rec["cost"] or {}, rec["grid"] or {}
    return {
        "cost": cost.get("total"),
        "currency": cost.get("currency"),
        "co2e_g": None if rec["co2_kg"] is None else 1000.0 * rec["co2_kg"],
        "grid_g_per_kwh": grid.get("gco2_per_kwh"),
    }
