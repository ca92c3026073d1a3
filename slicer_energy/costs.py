"""What a print costs and emits: electricity price, filament price and the grid's CO2e.

The inputs come from the command line or the user's config file (:mod:`userconfig`); the
numbers end up in every record (:mod:`slicer_energy.record`): ``cost`` with its prices,
``co2_kg`` with the ``grid`` factor it used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError


@dataclass(frozen=True)
class Costs:
    """Prices and grid factor a record's cost and CO2e are computed with (None: not asked)."""

    price_per_kwh: float | None = None
    currency: str | None = None
    filament_price_per_kg: float | None = None
    grid_id: str | None = None  # an electricity mix of lca/background, or None for a number
    gco2_per_kwh: float | None = None


def grid_kg_co2e_per_kwh(grid_ids: Sequence[str]) -> dict[str, float]:
    """GWP100 of one kWh of each electricity mix: the LCA background's flows times CML-IA's
    GWP100 factors (the numbers ``slicer-energy lca --grid`` uses)."""
    from .lca.data import load_background, load_method

    if not grid_ids:
        return {}
    db, method = load_background(), load_method()
    cf = method.factors["gwp100"]
    out = {}
    for g in grid_ids:
        proc = db.get(f"electricity:{g}", "grid")
        out[g] = sum(n.value * cf[f].value for f, n in proc.flows.items() if f in cf)
    return out


def parse_grid(text: str, where: str = "--grid") -> tuple[str | None, float]:
    """``DE`` (an electricity mix id) or ``380`` (g CO2e per kWh) -> (id or None, g/kWh)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not (math.isfinite(value) and value >= 0):
            raise SettingsError(f"{where}: {text!r}: expected a mix id or g CO2e/kWh >= 0")
        return None, value
    from .lca.data import load_background

    known = load_background().ids("electricity")
    if text not in known:
        raise SettingsError(
            f"{where}: unknown electricity mix {text!r}; known: {', '.join(known)} "
            "(or a number in g CO2e/kWh)"
        )
    return text, 1000.0 * grid_kg_co2e_per_kwh([text])[text]


def cost_fields(
    electricity_kwh: float, filament_g: float | None, costs: Costs | None
) -> dict[str, Any]:
    """The record's ``cost``, ``co2_kg`` and ``grid`` for ``electricity_kwh`` at the plug.

    ``filament_g`` is the FDM filament's mass (None for other processes: a powder or a
    moulding polymer is not priced at the filament's price).
    """
    c = costs or Costs()
    cost = None
    material_cost = (
        None
        if c.filament_price_per_kg is None or filament_g is None
        else filament_g / 1000.0 * c.filament_price_per_kg
    )
    electricity_cost = None if c.price_per_kwh is None else electricity_kwh * c.price_per_kwh
    if electricity_cost is not None or material_cost is not None:
        cost = {
            "total": (electricity_cost or 0.0) + (material_cost or 0.0),
            "electricity": electricity_cost,
            "filament": material_cost,
            "currency": c.currency,
            "price_per_kwh": c.price_per_kwh,
            "filament_price_per_kg": c.filament_price_per_kg,
        }
    if c.gco2_per_kwh is None:
        return {"cost": cost, "co2_kg": None, "grid": None}
    return {
        "cost": cost,
        "co2_kg": electricity_kwh * c.gco2_per_kwh / 1000.0,
        "grid": {"id": c.grid_id, "gco2_per_kwh": c.gco2_per_kwh},
    }
