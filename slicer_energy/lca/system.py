"""Build the product system of one scenario (foreground stages + background processes).

Foreground: a functional-unit activity consumes one unit of each life-cycle stage
(material, processing, transport, end of life, use phase), divided by the product-life
factor; each stage activity consumes background products (kg of material, kWh of
electricity, t*km of transport, kg to each end-of-life route, kg of fuel). Contribution
by stage is then the impact of each stage's demand, and the stages sum to the total.

One part per scenario: where a process model computed the energy, the part mass m is
the model's (the part of the sample geometry it ran), and so is the process waste where
the model computes it (FDM support and skirt, SLS/MLS powder not recycled, MLS supports,
casting returns and chips); otherwise, and always with ``--energy pinned``, m is the
scenario's ``part_mass_kg`` and the waste follows its share w: material in = m / (1 - w).
Process waste = material in - m goes to the waste route; the part itself to the
end-of-life routes by their shares. So material in = mass to end of life (the mass
balance the tests check). Fuels a process burns (``extra["fuels_kwh"]``) are booked as
their combustion, the rest of its energy as grid electricity, argon as argon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ProfileError
from ..estimate import J_PER_KWH, Estimate
from .calc import System
from .data import BackgroundProcess, Database, Num
from .energy import PartMaterial, part_material
from .scenarios import Scenario

STAGES = ("material", "processing", "transport", "end_of_life", "use")
# a process's own GWP, for proxies scaled by fossil carbon (UslciLink.per_gwp)
GWP_FLOWS = (("Carbon dioxide, fossil", "air"), ("GWP100, pre-characterised", "aggregate"))


@dataclass
class BuiltSystem:
    system: System
    fu: str
    stage_activity: dict[str, str]
    stage_demand: dict[str, float]
    mass_in_kg: float
    mass_out_kg: float
    grid: str
    energy_kwh: float
    steps: list[dict]
    part: dict  # the part's mass, its process waste and where both came from


def _v(n: Num, path: str, ov: Mapping[str, float]) -> float:
    return float(ov.get(path, n.value))


class _Builder:
    """The matrices of a product system as they grow: activities, technosphere entries
    (row, column, amount), elementary flows and missing characterisation notes."""

    def __init__(self, db: Database, ov: Mapping[str, float]) -> None:
        self.db = db
        self.ov = ov
        self.acts: list[str] = []
        self.tech: list[tuple[int, int, float]] = []
        self.bio: list = []
        self.missing: dict[int, dict[str, str]] = {}
        self.basis: dict[int, dict[str, str]] = {}
        self.linked: dict[int, dict[str, float]] = {}
        self.index: dict[str, int] = {}

    def activity(self, name: str) -> int:
        """The column of activity ``name``, created with its unit output on first use."""
        if name not in self.index:
            self.index[name] = len(self.acts)
            self.acts.append(name)
            self.tech.append((self.index[name], self.index[name], 1.0))
        return self.index[name]

    def add_background(self, key: str, where: str) -> int:
        """The column of background process ``key``, added with its flows and, recursively,
        its inputs on first use (``where`` names the chain for an unknown key's error)."""
        if key in self.index:
            return self.index[key]
        proc = self.db.get(key, where)
        j = self.activity(key)
        for flow, n in proc.flows.items():
            amount = _v(n, f"bg:{key}|{flow[0]}|{flow[1]}", self.ov)
            if amount != 0.0:
                self.bio.append((flow, j, amount))
        if proc.missing:
            self.missing[j] = dict(proc.missing)
        self.basis[j] = dict.fromkeys(proc.proxy, "proxy")
        if proc.uslci:
            self._add_uslci(proc, j)
        for ikey, n in proc.inputs.items():
            i = self.add_background(ikey, f"{where} -> {key}")
            self.tech.append((i, j, -_v(n, f"bg:{key}<{ikey}", self.ov)))
        return j

    def _add_uslci(self, proc: BackgroundProcess, j: int) -> None:
        """Scores of the linked USLCI process, one pre-characterised flow per substance."""
        link, key = proc.uslci, proc.key
        scores = self.db.uslci[link.process]
        k = _v(link.scale, f"bg:{key}|uslci.scale", self.ov)
        if link.per_gwp:
            k *= sum(_v(n, f"bg:{key}|{f[0]}|{f[1]}", self.ov) for f, n in proc.flows.items()
                     if f in GWP_FLOWS) / scores.total["gwp100"]  # fmt: skip
        for cat in link.categories:
            for sub, score in scores.substances[cat]:
                if score * k != 0.0:
                    self.bio.append(((sub, f"aggregate:{cat}"), j, score * k))
            self.basis[j][cat] = "proxy" if link.proxy else "uslci"
            self.linked.setdefault(j, {})[cat] = scores.linked_share[cat]

    def consume(self, stage_j: int, key: str, amount: float, where: str) -> None:
        """Stage ``stage_j`` takes ``amount`` of background product ``key`` (none: no entry)."""
        if amount == 0.0:
            return
        i = self.add_background(key, where)
        self.tech.append((i, stage_j, -amount))


def build_system(
    sc: Scenario,
    db: Database,
    energies: Mapping[int, Estimate | None],
    overrides: Mapping[str, float] | None = None,
    grid: str | None = None,
) -> BuiltSystem:
    """Product system of ``sc``; ``energies[i]`` is the Estimate of processing step i (or None
    when missing); ``overrides`` replace sourced numbers by parameter path (Monte Carlo,
    sensitivity); ``grid`` replaces the processing grid of every step (``--grid``)."""
    ov = overrides or {}
    sid = sc.id
    b = _Builder(db, ov)
    fu = f"functional unit {sid}"
    fu_j = b.activity(fu)
    stage_j = {s: b.activity(f"{sid} {s}") for s in STAGES}
    life = _v(sc.life_factor, f"{sid}.life_factor", ov)
    if life <= 0:
        raise ProfileError(f"{sc.file}: scenario {sid}: life_factor must be positive")
    for s in STAGES:
        b.tech.append((stage_j[s], fu_j, -1.0 / life))

    where = f"{sc.file}: scenario {sid}"
    pm = next((p for p in map(part_material, filter(None, energies.values())) if p), None)
    m, mat_in, part = _material(b, sc, stage_j["material"], pm, where)
    total_kwh, steps = _processing(b, sc, stage_j["processing"], energies, grid, where)
    for leg in sc.transport:
        mass = mat_in if leg.carries == "material" else m
        km = _v(leg.distance_km, f"{leg.path}.distance_km", ov)
        b.consume(stage_j["transport"], f"transport:{leg.mode}", mass / 1000.0 * km, where)
    out = _end_of_life(b, sc, stage_j["end_of_life"], m, mat_in, where)
    for j, (key, amount) in enumerate(sc.use_phase):
        b.consume(stage_j["use"], key, _v(amount, f"{sid}.use_phase[{j}].amount", ov), where)

    return BuiltSystem(
        system=System(b.acts, b.tech, b.bio, b.missing, b.basis, b.linked),
        fu=fu,
        stage_activity={s: f"{sid} {s}" for s in STAGES},
        stage_demand={s: 1.0 / life for s in STAGES},
        mass_in_kg=mat_in,
        mass_out_kg=out,
        grid=grid or sc.grid,
        energy_kwh=total_kwh,
        steps=steps,
        part=part,
    )


def _material(
    b: _Builder, sc: Scenario, stage_j: int, pm: PartMaterial | None, where: str
) -> tuple[float, float, dict]:
    """Virgin and recycled material for one part and its process waste: (part mass, material
    in, both in kg; the report's record of the part): the model's part ``pm`` where there is
    one, else the scenario's."""
    sid, ov = sc.id, b.ov
    if pm is not None:
        m, mass_from = pm.part_kg, pm.source
    else:
        m, mass_from = _v(sc.part_mass_kg, sc.part_mass_path, ov), f"scenario: {sc.part_mass_path}"
    if pm is not None and pm.waste_kg is not None:
        mat_in, waste_from = m + pm.waste_kg, pm.source
    else:
        w = _v(sc.process_waste_share, f"{sid}.process_waste_share", ov)
        if not 0.0 <= w < 1.0:
            raise ProfileError(f"{where}: process_waste_share = {w} must lie in [0, 1)")
        mat_in, waste_from = m / (1.0 - w), f"scenario: {sid}.process_waste_share = {w}"
    r = _v(sc.recycled_share, f"{sid}.recycled_share", ov)
    if r > 0 and not sc.recycled_material:
        raise ProfileError(f"{where}: recycled_share > 0 needs recycled_material")
    b.consume(stage_j, f"material:{sc.material}", (1.0 - r) * mat_in, where)
    if sc.recycled_material:
        b.consume(stage_j, f"material:{sc.recycled_material}", r * mat_in, where)
    part = {
        "part_kg": m,
        "process_waste_kg": mat_in - m,
        "mass_from": mass_from,
        "waste_from": waste_from,
    }
    return m, mat_in, part


def _processing(
    b: _Builder,
    sc: Scenario,
    stage_j: int,
    energies: Mapping[int, Estimate | None],
    grid: str | None,
    where: str,
) -> tuple[float, list[dict]]:
    """Processing electricity by grid, step by step: (kWh in all, one row per step). A step
    without an estimate marks the stage's impacts missing instead of counting zero."""
    total_kwh = 0.0
    steps = []
    for i, step in enumerate(sc.processing):
        est = energies.get(i)
        g = grid or step.grid or sc.grid
        if est is None:
            b.missing.setdefault(stage_j, {}).update(
                {c: f"{step.step}: {step.missing_reason}" for c in ("gwp100", "adp", "htp", "ap")}
            )
            steps.append(
                {
                    "step": step.step,
                    "process": step.process,
                    "energy_kwh": None,
                    "basis": "missing",
                    "source": step.missing_reason,
                    "grid": g,
                }
            )
            continue
        kwh = est.energy_j / J_PER_KWH
        total_kwh += kwh
        fuels = dict(est.extra.get("fuels_kwh", {}))
        w = f"{where}: processing[{i}]"
        b.consume(stage_j, f"electricity:{g}", kwh - sum(fuels.values()), w)
        for fuel, f_kwh in fuels.items():
            b.consume(stage_j, f"fuel:{fuel}", f_kwh, w)
        pm = part_material(est)
        b.consume(stage_j, "material:argon", pm.argon_m3 if pm else 0.0, w)
        steps.append(
            {
                "step": step.step,
                "process": step.process,
                "machine": step.machine,
                "energy_kwh": kwh,
                "electricity_kwh": kwh - sum(fuels.values()),
                "fuels_kwh": fuels,
                "argon_m3": pm.argon_m3 if pm else 0.0,
                "basis": est.provenance.get("basis", "model"),
                "source": est.provenance.get("source", est.provenance.get("profile", "")),
                "grid": g,
            }
        )
    return total_kwh, steps


def _end_of_life(
    b: _Builder, sc: Scenario, stage_j: int, m: float, mat_in: float, where: str
) -> float:
    """Process waste to its route and the part to the end-of-life routes by their shares;
    returns the mass out (kg), to balance the material in."""
    waste = mat_in - m
    b.consume(stage_j, f"end_of_life:{sc.waste_route}", waste, where)
    out = waste
    for j, (route, share) in enumerate(sc.end_of_life):
        kg = _v(share, f"{sc.id}.end_of_life[{j}].share", b.ov) * m
        out += kg
        b.consume(stage_j, f"end_of_life:{route}", kg, where)
    return out
