"""The plugin's estimate of one file: the ``gcode`` pipeline's numbers, then cost and CO2.

:func:`estimate_file` is the one place the plugin turns a G-code file into numbers; it runs
what ``slicer-energy gcode --json`` runs (``load_machine``, ``analyze_file``,
``GcodeResult.to_estimate``), so switching it to the CLI's shared record is a one-line change.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import SettingsError
from ...estimate import J_PER_KWH


def estimate_file(path: str | Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Predicted time, energy, cost and CO2 of the G-code at ``path`` for the plugin's
    ``settings`` (``printer``, ``price_per_kwh``, ``currency``, ``grid``)."""
    from ...gcode.analyze import analyze_file
    from ...machine import load_machine

    machine = load_machine(settings["printer"])
    res = analyze_file(str(path), machine, keep_rows=False, timeline=False)
    est = res.to_estimate(machine)
    record = {
        "printer": machine.name,
        "mode": res.mode,
        "time_s": res.time_s,
        "print_time_s": res.print_time_s,
        "energy_kwh": res.energy_j / J_PER_KWH,
        "filament_g": est.material_g,
        "warnings": list(res.warnings),
    }
    return {**record, **costs(record["energy_kwh"], settings)}


def costs(energy_kwh: float, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Cost and CO2e of ``energy_kwh`` at the settings' price and grid."""
    g_per_kwh = grid_g_per_kwh(settings["grid"])
    return {
        "cost": energy_kwh * float(settings["price_per_kwh"]),
        "currency": str(settings["currency"]),
        "co2e_g": energy_kwh * g_per_kwh,
        "grid_g_per_kwh": g_per_kwh,
    }


@lru_cache(maxsize=16)
def grid_g_per_kwh(grid: str | float) -> float:
    """g CO2e per kWh of ``grid``: a number (g/kWh) or an ID of lca/background/electricity.toml,
    whose flows are characterised with CML-IA's GWP100 factors (the LCA's own)."""
    try:
        value = float(grid)
    except (TypeError, ValueError):
        pass
    else:
        if value < 0:
            raise SettingsError(f"plugin setting grid: {value} g/kWh is negative")
        return value
    from ...lca.data import PRECHARACTERISED, load_background, load_method

    proc = load_background().get(f"electricity:{grid}", "plugin setting grid")
    gwp = load_method().factors["gwp100"]
    kg = sum(
        n.value * (1.0 if flow == PRECHARACTERISED else gwp[flow].value if flow in gwp else 0.0)
        for flow, n in proc.flows.items()
    )
    return 1000.0 * kg
