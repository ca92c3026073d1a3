"""Print it or buy it: the phone-case study's scenarios around a maker's own part.

``lca --part my.stl`` builds, in memory, one scenario per way of getting the part, each a
copy of a scenario of ``lca/scenarios/phone-case.toml`` (Petschow et al. 2014) with the
study's part replaced by the user's: printing at home (H5-A's filament supply chain and
end of life, on the user's printer and grid), buying it mass-produced (H1: injection
moulding in Shenzhen, air freight) and buying it from an SLS service (H3-30: a central
print shop that ships; H4-30: a regional one, collected). Every processing energy comes
from the process models on that part, and so do its mass and the process waste where a
model computes one (:func:`~slicer_energy.lca.energy.part_material`); materials,
transport legs, end-of-life routes, the producers' grids and the remaining waste shares
stay the study's. H2 is left out: its customiser's print has no energy in the study.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

from .data import Database
from .scenarios import Scenario, Study, load_study

BASE_STUDY = "phone-case"
# (id in the report, the study's scenario it copies, what it stands for)
CHOICES = (
    ("print-at-home", "H5-A", "print it at home (FDM)"),
    ("buy-moulded", "H1", "buy it mass-produced (injection moulding, CN, air freight)"),
    ("buy-sls-shipped", "H3-30", "buy it from a central SLS print shop (NL), shipped"),
    ("buy-sls-local", "H4-30", "buy it from a regional SLS print shop (DE), collected"),
)
HOME = CHOICES[0][0]


def part_study(part: str, printer: str, grid: str | None, db: Database) -> Study:
    """The study's scenarios for ``part`` (a path or sample name), home printing on
    ``printer`` with electricity mix ``grid`` (None: the study's, Berlin's ``DE``)."""
    base = load_study(BASE_STUDY, db)
    if grid is not None:
        db.get(f"electricity:{grid}", "--grid")
    name = Path(part).name
    scenarios = [
        _for_part(base.get(sid), new_id, f"{what} (the study's {sid})", part)
        for new_id, sid, what in CHOICES
    ]
    home = scenarios[0]
    home.processing = [replace(s, machine=printer, settings={}) for s in home.processing]
    home.grid = grid or home.grid
    return Study(
        name="print-or-buy",
        title=f"Print it or buy it: {name}",
        functional_unit=f"one {name}, delivered to a customer in Berlin and disposed of there "
        "(the study's setting)",
        source=base.source,
        scenarios=scenarios,
        path=base.path,
    )


def _for_part(sc: Scenario, new_id: str, label: str, part: str) -> Scenario:
    """A copy of ``sc`` under ``new_id`` whose steps run the models on ``part``."""
    out = copy.deepcopy(sc)
    out.id, out.label, out.part_sample = new_id, label, part
    out.processing = [
        replace(s, part_sample=part, path=f"{new_id}.processing[{j}]")
        for j, s in enumerate(out.processing)
    ]
    out.transport = [
        replace(leg, path=f"{new_id}.transport[{j}]") for j, leg in enumerate(out.transport)
    ]
    return out


def inputs(study: Study, printer: str, grid_from: str) -> dict[str, list[str]]:
    """Which inputs came from the user's part and options, and which from the study."""
    home = study.get(HOME)
    based = ", ".join(f"{new_id} = {sid}" for new_id, sid, _ in CHOICES)
    return {
        "from_part": [
            "processing energy of every scenario: the process models run on the part "
            "(FDM on the home printer, injection moulding, SLS in a full build)",
            "part mass and process waste where the model computes it (FDM support and "
            "skirt, SLS powder not recycled): see each scenario's 'part'",
        ],
        "from_options": [
            f"home printer: {printer}",
            f"home electricity mix: {home.grid} ({grid_from})",
        ],
        "from_study": [
            f"scenarios of {study.path.name} ({based}): materials, transport legs, "
            "end-of-life routes, the producers' grids, the moulder's process-waste share",
        ],
    }
