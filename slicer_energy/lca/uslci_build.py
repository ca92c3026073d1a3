"""Regenerate ``lca/background/uslci.csv`` from the USLCI zip (``scripts/build_lca_background.py``).

The file holds, per USLCI process the scenarios use, its cradle-to-gate CML scores by
category with the share of characterised flow that linked, and the substances behind each
score (those above 0.1 % of it; the rest as one "(other substances)" row), so the product
needs neither the zip nor bw2io at run time and a user without ``../shared`` gets the same
numbers. Values are written to 6 significant digits, so regeneration is exact.
"""

from __future__ import annotations

from pathlib import Path

from .cml import Factors, Mapping, characterise, load_factors, load_mapping
from .data import CATEGORIES
from .uslci import USLCI_SOURCE, Solver, read_uslci

# key in lca/background/uslci.csv -> USLCI process name (as in the data)
PROCESSES = {
    "electricity_us_2010": "Electricity, at Grid, US, 2010",
    "electricity_rfc_2010": "Electricity, at Grid, RFC, 2010",
    "electricity_serc_2010": "Electricity, at Grid, SERC, 2010",
    "electricity_wecc_2010": "Electricity, at Grid, WECC, 2010",
    "truck_combination": "Transport, combination truck, diesel powered",
    "truck_single_unit": "Transport, single unit truck, diesel powered",
    "truck_light_commercial": "Transport, light commercial truck, diesel powered",
    "aircraft_freight": "Transport, aircraft, freight",
    "ocean_freighter": "Transport, ocean freighter, average fuel mix",
    "train_diesel": "Transport, train, diesel powered",
    "pla_ingeo": "Polylactide Biopolymer Resin, at plant",
    "polypropylene_resin": "Polypropylene, resin, at plant",
    "injection_moulding_pp": "Injection molding, rigid polypropylene part, at plant",
    "aluminium_primary_ingot": "Aluminum, primary ingot, at plant",
    "aluminium_secondary_ingot": "Aluminum, secondary ingot, at plant",
    "casting_sand": "Precision sand casting, aluminum",
    "casting_semi_permanent_mould": "Semi-permanent mold (SPM) casting, aluminum",
    "casting_lost_foam": "Lost foam casting, aluminum",
    "natural_gas_boiler": "Natural gas, combusted in industrial boiler",
    "diesel_industrial_equipment": "Diesel, combusted in industrial equipment",
    "residual_fuel_oil_boiler": "Residual fuel oil, combusted in industrial boiler",
}
SUBSTANCE_SHARE = 1e-3
HEADER = "process,category,substance,compartment,amount,score,linked_share,unit,uslci_id"


def _g(v: float) -> str:
    return f"{0.0 if abs(v) < 1e-15 else v:.6g}"  # solver round-off below 1e-15 is zero


def build_table(
    zip_path: Path, factors: Factors | None = None, mapping: Mapping | None = None
) -> str:
    """The text of ``lca/background/uslci.csv`` built from ``zip_path``."""
    db = read_uslci(zip_path)
    solver = Solver(db)
    factors = factors or load_factors()
    mapping = mapping or load_mapping()
    lines = [
        "# Cradle-to-gate CML scores of USLCI processes, per unit of their reference.",
        f"# Source: {USLCI_SOURCE}.",
        f"# Factors: {factors.source}; links: lca/methods/uslci-to-cml.csv.",
        "# Regenerate: python scripts/build_lca_background.py (do not edit by hand).",
        "# substance '(total)' rows: score = the category total, linked_share = share of",
        "# characterised flow (by amount) whose compartment and unit linked; other rows: one",
        "# substance's amount (CML flow unit) and score; '(other substances)' = the rest.",
        HEADER,
    ]
    for key, name in PROCESSES.items():
        proc = db.by_name(name)
        ch = characterise(solver.inventory(proc.id), db.flows, factors, mapping)
        for cat in CATEGORIES:
            total = ch.score[cat]
            lines.append(",".join([key, cat, "(total)", "", "", _g(total),
                                   _g(ch.linked_share[cat]), proc.ref_unit, proc.id]))  # fmt: skip
            rest = total
            subs = sorted(ch.substances[cat].items(), key=lambda kv: (-abs(kv[1][1]), kv[0]))
            for (sub, comp), (amount, score) in subs:
                if total == 0.0 or abs(score) < SUBSTANCE_SHARE * abs(total):
                    continue
                rest -= score
                lines.append(",".join([key, cat, f'"{sub}"', comp, _g(amount), _g(score),
                                       "", proc.ref_unit, proc.id]))  # fmt: skip
            if total != 0.0 and abs(rest) > 0.0:
                lines.append(",".join([key, cat, "(other substances)", "", "", _g(rest),
                                       "", proc.ref_unit, proc.id]))  # fmt: skip
    return "\n".join(lines) + "\n"


def link_report(zip_path: Path, top: int = 8) -> str:
    """What was cut off in each process's supply chain (largest first), for the build log."""
    db = read_uslci(zip_path)
    solver = Solver(db)
    out = []
    for key, name in PROCESSES.items():
        out.append(f"{key} ({name}): largest cut-offs")
        for what, why, amount in solver.cutoffs(db.by_name(name).id, top):
            out.append(f"    {amount:11.4g}  {what}  [{why}]")
    return "\n".join(out)
