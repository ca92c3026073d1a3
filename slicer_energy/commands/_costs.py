"""The cost and emissions options every command that reports energy takes, and their
defaults from the user's config file (:mod:`slicer_energy.userconfig`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..costs import Costs, parse_grid
from ..userconfig import load_user_config
from ._numbers import nonneg_float


def add_cost_options(p: argparse.ArgumentParser) -> None:
    """``--price-per-kwh``, ``--currency``, ``--filament-price-per-kg``, ``--grid``."""
    g = p.add_argument_group(
        "cost and emissions (defaults: the user config file, $SLICER_ENERGY_CONFIG or "
        "config.toml in the user config directory)"
    )
    g.add_argument(
        "--price-per-kwh", type=nonneg_float, metavar="PRICE", help="electricity price per kWh"
    )
    g.add_argument("--currency", help="currency the prices are in, e.g. EUR (a label only)")
    g.add_argument(
        "--filament-price-per-kg",
        type=nonneg_float,
        metavar="PRICE",
        help="FDM filament price per kg (adds the filament to the cost)",
    )
    g.add_argument(
        "--grid",
        metavar="ID|G_PER_KWH",
        help="electricity mix for CO2e: an id of lca/background (DE, FR, US, ...) or a number "
        "in g CO2e/kWh",
    )


def costs_from_args(args: argparse.Namespace) -> Costs:
    """The options given, else the config file's values, as :class:`Costs`."""
    cfg = load_user_config()

    def pick(name: str) -> Any:
        v = getattr(args, name, None)
        return getattr(cfg, name) if v is None else v

    grid = pick("grid")
    grid_id, gco2 = (None, None)
    if grid is not None:
        where = "--grid" if args.grid is not None else f"{cfg.path}: key 'grid'"
        grid_id, gco2 = parse_grid(str(grid), where)
    return Costs(
        price_per_kwh=pick("price_per_kwh"),
        currency=pick("currency"),
        filament_price_per_kg=pick("filament_price_per_kg"),
        grid_id=grid_id,
        gco2_per_kwh=gco2,
    )


def default_printer(given: str | None, fallback: str | None) -> str | None:
    """``--printer`` as given, else the config file's ``printer``, else ``fallback``."""
    return given or load_user_config().printer or fallback


def print_costs(rec: dict[str, Any]) -> None:
    """The cost and CO2e lines under a command's table (nothing when none was asked)."""
    c = rec["cost"]
    if c is not None:
        cur = f" {c['currency']}" if c["currency"] else ""
        parts = []
        if c["electricity"] is not None:
            parts.append(f"electricity {c['electricity']:.3f} at {c['price_per_kwh']:g}/kWh")
        if c["filament"] is not None:
            parts.append(f"filament {c['filament']:.3f} at {c['filament_price_per_kg']:g}/kg")
        print(f"cost: {c['total']:.3f}{cur} ({', '.join(parts)})")
    if rec["co2_kg"] is not None:
        g = rec["grid"]
        mix = f"grid {g['id']}, " if g["id"] else ""
        print(f"emissions: {rec['co2_kg']:.4f} kg CO2e ({mix}{g['gco2_per_kwh']:.0f} g/kWh)")
