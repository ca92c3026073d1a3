"""Export a study's product systems to Brightway 2.5 (bw2data >= 4), for practitioners.

What is written into the current Brightway project:

* a biosphere database (``<prefix> biosphere``) with the elementary flows the systems use
  (names and compartments follow ecoinvent's biosphere, so they can be re-linked to
  ``ecoinvent-3.x biosphere`` with bw2io's strategies), plus the pre-characterised GWP
  pseudo-flow;
* a technosphere database (``<prefix> foreground``): each scenario's functional unit and
  stage activities, and the simplified background processes of ``lca/background`` (one
  activity each, shared by all scenarios) - replace or relink these to a licensed
  background database for a full study;
* one method per category (``(prefix, "CML-IA v4.8", category)``) with our CFs.

Optional: needs ``pip install 'slicer-energy[brightway]'``. Set ``BRIGHTWAY2_DIR`` before
the first import of bw2data to choose where projects live.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import SlicerEnergyError
from .data import CATEGORIES, Flow
from .study import StudyRun
from .system import build_system


def _code(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._:-]+", "_", name)


def export_study(run: StudyRun, project: str, prefix: str = "slicer-energy") -> dict[str, Any]:
    """Write the study into Brightway project ``project``; return database and method names."""
    try:
        import bw2data as bd
    except ImportError:
        raise SlicerEnergyError(
            "Brightway export needs the optional extra: pip install 'slicer-energy[brightway]'"
        ) from None
    bd.projects.set_current(project)
    bio_name, fg_name = f"{prefix} biosphere", f"{prefix} foreground"
    flows: dict[Flow, str] = {}
    acts: dict[str, dict[str, Any]] = {}
    fus: dict[str, tuple[str, str]] = {}
    for sc in run.study.scenarios:
        built = build_system(sc, run.db, run.energies[sc.id], None, run.grid)
        sys_ = built.system
        for j, name in enumerate(sys_.activities):
            code = _code(name)
            if code in acts:
                continue  # shared background process, already written
            proc = run.db.processes.get(name)
            acts[code] = {
                "name": proc.name if proc else name,
                "reference product": name,
                "unit": proc.unit if proc else "unit",
                "location": "GLO",
                "comment": (proc.scope if proc else "")
                + (f"; missing: {proc.missing}" if proc and proc.missing else ""),
                "exchanges": [],
                "_col": j,
                "_sys": sys_,
            }
        fus[sc.id] = (fg_name, _code(built.fu))
        for f, _, _ in sys_.biosphere:
            flows.setdefault(f, _code(f"{f[0]}|{f[1]}"))
    for a in acts.values():
        sys_, j = a.pop("_sys"), a.pop("_col")
        for row, col, amount in sys_.technosphere:
            if col != j:
                continue
            typ = "production" if row == col else "technosphere"
            a["exchanges"].append(
                {
                    "input": (fg_name, _code(sys_.activities[row])),
                    "amount": amount if typ == "production" else -amount,
                    "type": typ,
                }  # fmt: skip
            )
        for f, col, amount in sys_.biosphere:
            if col == j:
                a["exchanges"].append({"input": (bio_name, flows[f]), "amount": amount,
                                       "type": "biosphere"})  # fmt: skip
    bio = bd.Database(bio_name)
    bio.write({
        (bio_name, code): {"name": f[0], "categories": (f[1],), "unit": "kilogram",
                           "type": "natural resource" if f[1] == "natural resource"
                           else "emission"}
        for f, code in flows.items()
    })  # fmt: skip
    bd.Database(fg_name).write({(fg_name, code): a for code, a in acts.items()})
    methods = {}
    for cat in CATEGORIES:
        key = (prefix, f"CML-IA v4.8 ({run.method.gwp_set})", cat)
        m = bd.Method(key)
        meta = run.method.categories[cat]
        m.register(unit=meta["unit"], description=meta["label"])
        m.write([((bio_name, code), run.method.cf(cat, f))
                 for f, code in flows.items() if run.method.cf(cat, f) is not None])  # fmt: skip
        methods[cat] = key
    return {"biosphere": bio_name, "foreground": fg_name, "methods": methods,
            "functional_units": fus}  # fmt: skip
