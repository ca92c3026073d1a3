"""Read the USLCI database (openLCA 1.5 JSON-LD zip) and solve cradle-to-gate inventories.

bw2io's ``JSONLDImporter`` expects openLCA 2 JSON-LD and fails on this export (its
``category`` is a reference object, not a path), so this is an own reader on zipfile + json.
Every unit process produces its quantitative reference; a product input is linked to the
one process whose reference is that flow (USLCI has no default providers). What cannot be
linked is cut off and reported: ``Dummy_``/``CUTOFF`` flows, inputs nobody produces, and
co-product outputs (USLCI's allocation factors are not applied: the reference product
carries the whole burden). Amounts are converted to each flow's reference unit.
The matrices are solved with this project's engine (:mod:`.calc`).
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LCAError
from .calc import LCA, System
from .data import Method

USLCI_README = "shared/data/uslci/README.md"
USLCI_COMMIT = "91824482b335d7db1b232d18dcc259301c4e42c9"
USLCI_SOURCE = (
    "USLCI openLCA 1.5 JSON-LD export (FLCAC-admin/uslci-content "
    f"downloads/uslci_olca1_5_0_json_ld, commit {USLCI_COMMIT[:12]}; MIT licence)"
)


@dataclass(frozen=True)
class UFlow:
    """One flow: elementary flows carry their compartment path (``air/unspecified``)."""

    id: str
    name: str
    kind: str  # ELEMENTARY_FLOW, PRODUCT_FLOW, WASTE_FLOW
    compartment: str
    unit: str


@dataclass(frozen=True)
class UExchange:
    flow: str
    amount: float  # in the flow's reference unit
    input: bool


@dataclass
class UProcess:
    id: str
    name: str
    location: str
    ref_flow: str
    ref_amount: float  # the quantitative reference, in the flow's reference unit
    ref_unit: str  # the unit the reference is written in (kWh, t*km, kg)
    ref_written: float  # its amount as written (1 kWh, 1000 kg)
    exchanges: list[UExchange] = field(default_factory=list)


@dataclass
class Uslci:
    processes: dict[str, UProcess]
    flows: dict[str, UFlow]

    def by_name(self, name: str) -> UProcess:
        hits = [p for p in self.processes.values() if p.name == name]
        if len(hits) != 1:
            raise LCAError(f"USLCI: {len(hits)} processes named {name!r} (need exactly one)")
        return hits[0]


def _objects(z: zipfile.ZipFile, folder: str) -> dict[str, dict]:
    out = {}
    for n in z.namelist():
        parts = n.split("/")
        if len(parts) >= 2 and parts[-2] == folder and n.endswith(".json"):
            d = json.loads(z.read(n))
            out[d["@id"]] = d
    return out


def _category_path(cats: dict[str, dict], ref: dict | None) -> str:
    names = []
    cid = ref and ref.get("@id")
    while cid and cid in cats:
        names.append(cats[cid]["name"])
        cid = (cats[cid].get("category") or {}).get("@id")
    return "/".join(reversed(names))


def read_uslci(path: Path) -> Uslci:
    """Processes and flows of the zip, amounts converted to reference units."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise LCAError(f"{path}: cannot read the USLCI zip ({exc})") from None
    with z:
        cats = _objects(z, "categories")
        units = _objects(z, "unit_groups")
        props = _objects(z, "flow_properties")
        raw_flows = _objects(z, "flows")
        raw_procs = _objects(z, "processes")
    unit_cf = {u["@id"]: float(u.get("conversionFactor", 1.0)) for g in units.values()
               for u in g["units"]}  # fmt: skip
    ref_unit = {gid: next(u["name"] for u in g["units"] if u.get("referenceUnit"))
                for gid, g in units.items()}  # fmt: skip
    flows: dict[str, UFlow] = {}
    prop_cf: dict[tuple[str, str], float] = {}
    for fid, f in raw_flows.items():
        ref_prop = next(p for p in f["flowProperties"] if p.get("referenceFlowProperty"))
        for p in f["flowProperties"]:
            prop_cf[(fid, p["flowProperty"]["@id"])] = float(p.get("conversionFactor", 1.0))
        group = props[ref_prop["flowProperty"]["@id"]]["unitGroup"]["@id"]
        flows[fid] = UFlow(fid, f["name"].strip(), f["flowType"],
                           _category_path(cats, f.get("category")), ref_unit[group])  # fmt: skip
    procs = {}
    for pid, p in raw_procs.items():
        exchanges, ref = [], None
        for e in p.get("exchanges", []):
            fid = e["flow"]["@id"]
            amount = (float(e["amount"]) * unit_cf[e["unit"]["@id"]]
                      / prop_cf[(fid, e["flowProperty"]["@id"])])  # fmt: skip
            if e.get("quantitativeReference"):
                ref = (fid, amount, e["unit"]["name"], float(e["amount"]))
            else:
                exchanges.append(UExchange(fid, amount, bool(e["input"])))
        if ref is None:
            raise LCAError(f"USLCI process {p['name']!r} has no quantitative reference")
        procs[pid] = UProcess(pid, p["name"].strip(), (p.get("location") or {}).get("name", ""),
                              *ref, exchanges)  # fmt: skip
    return Uslci(procs, flows)


@dataclass
class Matrices:
    """The whole database as one :class:`System`, with what was cut off and why."""

    system: System
    column: dict[str, int]  # process id -> activity column
    cutoff: dict[str, list[tuple[str, str, float]]]  # process id -> (flow, reason, amount)


def build_matrices(db: Uslci) -> Matrices:
    """Technosphere (products and waste linked to their one provider) and biosphere.

    Elementary flows keep their sign as in openLCA/Brightway: resources and emissions both
    positive, so positive factors give positive scores.
    """
    provider: dict[str, list[str]] = defaultdict(list)
    by_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in db.processes.values():
        provider[p.ref_flow].append(p.id)
        f = db.flows[p.ref_flow]
        by_name[(f.name, f.unit)].append(p.id)
    for f in db.flows.values():  # duplicate flow objects of one product: link by name + unit
        if f.kind != "ELEMENTARY_FLOW" and f.id not in provider:
            provider[f.id] = by_name.get((f.name, f.unit), [])
    pids = sorted(db.processes)
    col = {pid: j for j, pid in enumerate(pids)}
    tech: list[tuple[int, int, float]] = []
    bio = []
    cutoff: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for pid in pids:
        p, j = db.processes[pid], col[pid]
        tech.append((j, j, p.ref_amount))
        for e in p.exchanges:
            f = db.flows[e.flow]
            if f.kind == "ELEMENTARY_FLOW":
                bio.append(((f.id, "uslci"), j, e.amount))
                continue
            reason = _cut_reason(f, e, provider)
            if reason:
                cutoff[pid].append((f.name, reason, e.amount))
                continue
            tech.append((col[provider[f.id][0]], j, -e.amount))
    system = System([db.processes[p].name for p in pids], tech, bio)
    return Matrices(system, col, dict(cutoff))


def _cut_reason(f: UFlow, e: UExchange, provider: dict[str, list[str]]) -> str:
    """Why an exchange of a product or waste flow is not linked ('' when it is)."""
    wanted = e.input if f.kind == "PRODUCT_FLOW" else not e.input
    if not wanted:
        return "co-product output (no allocation)" if not e.input else "waste input"
    if f.name.startswith(("Dummy_", "CUTOFF")):
        return "unlinked placeholder flow"
    if not provider.get(f.id):
        return "no provider in USLCI"
    if len(provider[f.id]) > 1:
        return "several providers"
    return ""


class Solver:
    """One factorisation of the database's technosphere, many cradle-to-gate solves."""

    def __init__(self, db: Uslci, method: Method | None = None) -> None:
        self.db = db
        self.m = build_matrices(db)
        self.lca = LCA(self.m.system, method or Method("ar5", {}, {}), categories=())
        self.flow_ids = [f[0] for f in self.lca.flows]

    def supply(self, process_id: str) -> np.ndarray:
        """Supply of every process for one unit of ``process_id``'s reference as written
        (1 kWh, 1 t*km, 1 kg)."""
        p = self.db.processes[process_id]
        demand = np.zeros(len(self.m.system.activities))
        demand[self.m.column[process_id]] = p.ref_amount / p.ref_written
        return self.lca.solve_linear_system(demand)

    def inventory(self, process_id: str) -> dict[str, float]:
        """Cradle-to-gate elementary flows (flow id -> amount in its reference unit)."""
        g = self.lca.biosphere_matrix @ self.supply(process_id)
        return {fid: float(v) for fid, v in zip(self.flow_ids, g, strict=True) if v != 0.0}

    def cutoffs(self, process_id: str, top: int = 10) -> list[tuple[str, str, float]]:
        """The largest cut-off exchanges in the supply chain, scaled by each process's supply."""
        s = self.supply(process_id)
        rows = []
        for pid, cuts in self.m.cutoff.items():
            x = s[self.m.column[pid]]
            if abs(x) > 1e-15:
                rows += [(f"{self.db.processes[pid].name}: {n}", r, a * x) for n, r, a in cuts]
        rows.sort(key=lambda r: -abs(r[2]))
        return rows[:top]
