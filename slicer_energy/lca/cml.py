"""Link USLCI elementary flows to CML-IA v4.8 factors (bw2io's copy) and characterise.

Links go by name + compartment + unit. What differs between USLCI's (openLCA 1.x) names and
ecoinvent 3.9's (which bw2io's CML-IA uses) is listed in ``lca/methods/uslci-to-cml.csv``
with a reason per row; nothing is matched by guessing. A flow whose name CML-IA knows in a
category but whose compartment or unit did not link counts against that category's
``linked_share``, so a lost link shows up as a share below one instead of silently as zero.

ADP is reported as CML 2001 used it (the study's method): elements (CML-IA 4.8, ultimate
reserves) plus fossil fuels in kg Sb-eq, the fossil energy in MJ times the factor of the
``Energy, fossil`` row of ``cml-ia-4.8.csv``.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import LCAError
from ..resources import data_dir
from .data import CATEGORIES, load_method
from .uslci import UFlow

FOSSIL = "Energy, fossil"
ADP_FOSSIL_BW2IO = (
    "CML v4.8 2016",
    "energy resources: non-renewable",
    "abiotic depletion potential (ADP): fossil fuels",
)
_NETL = ("Elementary Flows/NETL Coal Elementary Flows/", "Elementary Flows/")


def bw2io_cml_path() -> Path:
    """bw2io's LCIA file, found without importing bw2io (its import sets up a data dir)."""
    spec = importlib.util.find_spec("bw2io")
    if spec is None or not spec.submodule_search_locations:
        raise LCAError(
            "bw2io is not installed: it holds the CML-IA v4.8 factors (pip install bw2io)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data/lcia/lcia_39_ecoinvent.zip"


@dataclass(frozen=True)
class Factors:
    """CML-IA factors by category: (name, compartment path) -> CF, in the report's units."""

    cf: dict[str, dict[tuple[str, str], float]]
    names: dict[str, set[str]]
    source: str


def load_factors(path: Path | None = None) -> Factors:
    """The four categories of ``categories.toml`` from bw2io's CML v4.8 2016, ADP with fossil."""
    path = path or bw2io_cml_path()
    with zipfile.ZipFile(path) as z:
        methods = {tuple(m["name"]): m for m in json.loads(z.read("data.json"))}
    method = load_method("ar5")
    per_mj = method.factors["adp"][(FOSSIL, "natural resource")].value
    cf: dict[str, dict[tuple[str, str], float]] = {c: {} for c in CATEGORIES}
    for cat in CATEGORIES:
        for e in methods[tuple(method.categories[cat]["bw2io"])]["exchanges"]:
            cf[cat][(e["name"], "/".join(e["categories"]))] = float(e["amount"])
    for e in methods[ADP_FOSSIL_BW2IO]["exchanges"]:
        cf["adp"][(e["name"], "/".join(e["categories"]))] = float(e["amount"]) * per_mj
    cf["adp"][(FOSSIL, "natural resource")] = per_mj
    names = {c: {n for n, _ in cf[c]} for c in CATEGORIES}
    return Factors(
        cf, names, f"bw2io {path.name}: CML v4.8 2016; ADP fossil x {per_mj} kg Sb-eq/MJ"
    )


@dataclass(frozen=True)
class Mapping:
    compartments: dict[str, str]
    names: dict[tuple[str, str], tuple[str, float]]  # (uslci name, unit) -> (cml name, factor)


def load_mapping(path: Path | None = None) -> Mapping:
    path = path or data_dir("lca") / "methods" / "uslci-to-cml.csv"
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    comps, names = {}, {}
    for i, row in enumerate(csv.DictReader(lines), start=2):
        if not row["reason"]:
            raise LCAError(f"{path}: row {i} ({row['uslci']}) has no reason")
        if row["kind"] == "compartment":
            comps[row["uslci"]] = row["cml"]
        elif row["kind"] == "name":
            names[(row["uslci"], row["unit"])] = (row["cml"], float(row["factor"]))
        else:
            raise LCAError(f"{path}: row {i}: kind must be 'compartment' or 'name'")
    return Mapping(comps, names)


def _compartment(flow: UFlow, mapping: Mapping) -> str | None:
    path = flow.compartment
    for prefix in _NETL:
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return mapping.compartments.get(path)


def _name(flow: UFlow, resource: bool) -> str:
    name = flow.name.split(" [")[0].strip()  # NETL: "Nickel (+II) [Heavy metals to air]"
    if resource:
        for tail in (", in ground", " in ground"):
            name = name.removesuffix(tail)
    return name.strip()


@dataclass(frozen=True)
class Link:
    name: str
    compartment: str | None
    factor: float  # CML flow units per USLCI unit


def link(flow: UFlow, mapping: Mapping) -> Link:
    """The CML-IA flow a USLCI elementary flow stands for (compartment None: not linked)."""
    comp = _compartment(flow, mapping)
    name = _name(flow, bool(comp and comp.startswith("natural resource")))
    cml, factor = mapping.names.get((name, flow.unit), (name, 1.0))
    if (name, flow.unit) not in mapping.names and flow.unit != "kg":
        comp = None  # CML-IA factors of unmapped flows are per kg
    return Link(cml, comp, factor)


def _cf(f: Factors, cat: str, lk: Link) -> float | None:
    if lk.compartment is None:
        return None
    table = f.cf[cat]
    if lk.name == FOSSIL:
        return table[(FOSSIL, "natural resource")] if cat == "adp" else None
    for comp in (lk.compartment, lk.compartment.split("/")[0]):
        if (lk.name, comp) in table:
            return table[(lk.name, comp)]
    return None


@dataclass
class Characterised:
    """One inventory's scores: per category the total, the linked share and the substances."""

    score: dict[str, float]
    linked_share: dict[str, float]
    substances: dict[str, dict[tuple[str, str], tuple[float, float]]]  # -> (amount, score)


def characterise(
    inventory: dict[str, float], flows: dict[str, UFlow], factors: Factors, mapping: Mapping
) -> Characterised:
    """Scores of ``inventory`` (flow id -> amount) by category, with what linked."""
    score = dict.fromkeys(CATEGORIES, 0.0)
    cand = dict.fromkeys(CATEGORIES, 0.0)
    linked = dict.fromkeys(CATEGORIES, 0.0)
    subs: dict[str, dict[tuple[str, str], list[float]]] = {c: defaultdict(lambda: [0.0, 0.0])
                                                           for c in CATEGORIES}  # fmt: skip
    for fid, amount in inventory.items():
        lk = link(flows[fid], mapping)
        x = amount * lk.factor
        for cat in CATEGORIES:
            if lk.name not in factors.names[cat]:
                continue
            cand[cat] += abs(x)
            cf = _cf(factors, cat, lk)
            if cf is None:
                continue
            linked[cat] += abs(x)
            score[cat] += x * cf
            acc = subs[cat][(lk.name, str(lk.compartment).split("/")[0])]
            acc[0] += x
            acc[1] += x * cf
    share = {c: (linked[c] / cand[c] if cand[c] else 1.0) for c in CATEGORIES}
    return Characterised(
        score, share, {c: {k: (v[0], v[1]) for k, v in subs[c].items()} for c in CATEGORIES}
    )
