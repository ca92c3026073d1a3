"""Run a study: every scenario's impacts by category and stage, plus uncertainty.

Pure orchestration over :mod:`.scenarios`, :mod:`.energy`, :mod:`.system` and :mod:`.calc`.
Processing energies are computed once per scenario (process models are the slow part);
Monte Carlo and one-at-a-time sensitivity re-evaluate the cheap matrix part with sampled
or shifted inputs, and a model energy again from its cached geometry with the drawn machine
numbers and build utilisation (:mod:`.replay`). Background factors and a machine's numbers
are shared across scenarios within a draw, so comparisons between scenarios keep their
correlation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..estimate import Estimate
from .calc import LCA
from .data import CATEGORIES, Database, Method, Num, load_background, load_method
from .energy import step_energy
from .replay import EnergyReplay, utilisation_path
from .scenarios import ProcessingStep, Scenario, Study, load_study
from .system import STAGES, build_system


@dataclass
class ScenarioResult:
    id: str
    label: str
    totals: dict[str, float]
    by_stage: dict[str, dict[str, float]]
    missing: dict[str, list[str]]
    by_activity_gwp: dict[str, float]
    energy_kwh: float
    steps: list[dict]
    grid: str
    mass_in_kg: float
    mass_out_kg: float
    part: dict
    shares: dict[str, dict[str, float | None]] = field(default_factory=dict)
    htp_substances: dict[str, float] = field(default_factory=dict)

    def to_dict(self, method: Method) -> dict[str, Any]:
        cats = {}
        for c in CATEGORIES:
            key = method.categories[c]["key"]
            unknown = bool(self.missing[c]) and self.totals[c] == 0.0
            cats[key] = {
                "total": None if unknown else self.totals[c],
                "by_stage": self.by_stage[c],
                "complete": not self.missing[c],
                "missing": self.missing[c],
                **self.shares.get(c, {}),
            }
        total_htp = sum(abs(v) for v in self.htp_substances.values()) or 1.0
        cats[method.categories["htp"]["key"]]["substances"] = {
            k: v / total_htp for k, v in self.htp_substances.items() if abs(v) >= 1e-3 * total_htp
        }
        return {
            "id": self.id,
            "label": self.label,
            **{k: v["total"] for k, v in cats.items()},
            "categories": cats,
            "processing_energy_kwh": self.energy_kwh,
            "processing_steps": self.steps,
            "grid": self.grid,
            "mass_balance_kg": {"in": self.mass_in_kg, "out": self.mass_out_kg},
            "part": self.part,
        }


@dataclass
class StudyRun:
    study: Study
    db: Database
    method: Method
    energy_mode: str
    grid: str | None
    energies: dict[str, dict[int, Estimate | None]] = field(default_factory=dict)
    replay: EnergyReplay = field(default_factory=EnergyReplay)

    @classmethod
    def create(
        cls,
        name: str,
        grid: str | None = None,
        energy_mode: str = "auto",
        gwp_set: str = "ar5",
        db: Database | None = None,
    ) -> StudyRun:
        db = db or load_background()
        if grid is not None:
            db.get(f"electricity:{grid}", "--grid")
        return cls.from_study(load_study(name, db), db, grid, energy_mode, gwp_set)

    @classmethod
    def from_study(
        cls,
        study: Study,
        db: Database,
        grid: str | None = None,
        energy_mode: str = "auto",
        gwp_set: str = "ar5",
    ) -> StudyRun:
        """A run of scenarios built in memory (``lca --part``), energies computed once."""
        run = cls(study, db, load_method(gwp_set), energy_mode, grid)
        for sc in run.study.scenarios:
            run.energies[sc.id] = scenario_energies(sc, energy_mode)
        return run

    def evaluate(
        self,
        sc: Scenario,
        overrides: Mapping[str, float] | None = None,
        energies: Mapping[int, Estimate | None] | None = None,
        grid: str | None = None,
    ) -> ScenarioResult:
        ov = overrides or {}
        en = energies if energies is not None else self._energies(sc, ov)
        built = build_system(sc, self.db, en, ov, grid or self.grid)
        lca = LCA(built.system, self.method)
        supply = lca.solve_linear_system(lca.demand_array({built.fu: 1.0}))
        totals = dict(zip(lca.categories, lca.score(supply).tolist(), strict=True))
        by_stage: dict[str, dict[str, float]] = {c: {} for c in lca.categories}
        for s in STAGES:
            sup = lca.solve_linear_system(
                lca.demand_array({built.stage_activity[s]: built.stage_demand[s]})
            )
            for c, v in zip(lca.categories, lca.score(sup).tolist(), strict=True):
                by_stage[c][s] = v
        ci = lca.characterized_inventory(supply).tocsr()
        gwp_row = ci.getrow(lca.categories.index("gwp100")).toarray().ravel()
        by_act = {
            a: float(gwp_row[j]) for j, a in enumerate(built.system.activities) if gwp_row[j] != 0
        }
        return ScenarioResult(
            id=sc.id,
            label=sc.label,
            totals=totals,
            by_stage=by_stage,
            missing=lca.missing(supply),
            by_activity_gwp=by_act,
            energy_kwh=built.energy_kwh,
            steps=built.steps,
            grid=built.grid,
            mass_in_kg=built.mass_in_kg,
            mass_out_kg=built.mass_out_kg,
            part=built.part,
            shares=lca.shares(supply),
            htp_substances=lca.substances(supply, "htp"),
        )

    def _energies(self, sc: Scenario, ov: Mapping[str, float]) -> dict[int, Estimate | None]:
        """Cached energies; recomputed when an override touches them (pinned: the figure or
        utilisation; model: the machine's numbers or utilisation, replayed)."""
        base = self.energies[sc.id]
        if not ov:
            return base
        out = dict(base)
        mass = float(ov.get(sc.part_mass_path, sc.part_mass_kg.value))
        for i, step in enumerate(sc.processing):
            est = base.get(i)
            if est is None:
                continue
            if est.provenance.get("basis") == "pinned":
                out[i] = step_energy(step, mass, "pinned", ov, ov.get(utilisation_path(step)))
            elif self.replay.touches(step, ov):
                out[i] = self.replay.estimate(step, est, ov)
        return out

    def results(self, overrides: Mapping[str, float] | None = None) -> list[ScenarioResult]:
        return [self.evaluate(sc, overrides) for sc in self.study.scenarios]


def scenario_energies(sc: Scenario, mode: str) -> dict[int, Estimate | None]:
    return {
        i: step_energy(step, sc.part_mass_kg.value, mode) for i, step in enumerate(sc.processing)
    }


# ----------------------------------------------------------------- uncertainty


def uncertain_parameters(run: StudyRun) -> dict[str, Num]:
    """Every sourced number with a low/high range, by parameter path."""
    out: dict[str, Num] = {}
    for key, proc in run.db.processes.items():
        for flow, n in proc.flows.items():
            if n.uncertain:
                out[f"bg:{key}|{flow[0]}|{flow[1]}"] = n
        for ikey, n in proc.inputs.items():
            if n.uncertain:
                out[f"bg:{key}<{ikey}"] = n
    for sc in run.study.scenarios:
        cand = {
            sc.part_mass_path: sc.part_mass_kg,
            f"{sc.id}.process_waste_share": sc.process_waste_share,
            f"{sc.id}.recycled_share": sc.recycled_share,
            f"{sc.id}.life_factor": sc.life_factor,
        }
        for leg in sc.transport:
            cand[f"{leg.path}.distance_km"] = leg.distance_km
        for j, (_, amount) in enumerate(sc.use_phase):
            cand[f"{sc.id}.use_phase[{j}].amount"] = amount
        cand.update(_processing_parameters(run, sc))
        out.update({p: n for p, n in cand.items() if n.uncertain})
    return out


def _processing_parameters(run: StudyRun, sc: Scenario) -> dict[str, Num]:
    """A scenario's processing inputs: utilisation, and a pinned step's figures or a model
    step's machine numbers."""
    out: dict[str, Num] = {}
    for i, step in enumerate(sc.processing):
        est = run.energies[sc.id].get(i)
        if est is None:
            continue
        if step.utilisation is not None:
            out[utilisation_path(step)] = step.utilisation
        if est.provenance.get("basis") == "pinned":
            out.update(_pinned_parameters(step))
        else:
            out.update(run.replay.parameters(step))
    return out


def _pinned_parameters(step: ProcessingStep) -> dict[str, Num]:
    """A pinned step's figures by parameter path: its electricity and each fuel."""
    out = {
        f"{step.path}.pinned_fuel_kwh_per_kg.{f}": n for f, n in step.pinned_fuel_kwh_per_kg.items()
    }
    if step.pinned_kwh is not None:
        out[f"{step.path}.pinned_kwh"] = step.pinned_kwh
    elif step.pinned_kwh_per_kg is not None:
        out[f"{step.path}.pinned_kwh_per_kg"] = step.pinned_kwh_per_kg
    return out


DISTRIBUTION = "triangular(low, value, high) on every input with a range"


def sample_results(
    run: StudyRun, iterations: int, seed: int
) -> Iterator[tuple[dict[str, float], list[ScenarioResult]]]:
    """Seeded draws, triangular(low, value, high) for every ranged input (the nominal value
    is the mode): each draw's overrides and every scenario's result under them."""
    params = uncertain_parameters(run)
    names = sorted(params)
    rng = np.random.default_rng(seed)
    lows = np.array([params[p].low for p in names])
    modes = np.array([params[p].value for p in names])
    highs = np.array([params[p].high for p in names])
    draws = rng.triangular(lows, modes, highs, size=(iterations, len(names)))
    for k in range(iterations):
        ov = dict(zip(names, draws[k].tolist(), strict=True))
        yield ov, run.results(ov)


def monte_carlo(run: StudyRun, iterations: int = 200, seed: int = 42) -> dict[str, Any]:
    """Seeded Monte Carlo (:func:`sample_results`).

    Returns, per scenario and category, mean and 5/50/95 % quantiles, and for GWP the
    probability of each scenario ranking as it does at the nominal values.
    """
    names = sorted(uncertain_parameters(run))
    ids = run.study.ids()
    samples = {c: np.empty((iterations, len(ids))) for c in CATEGORIES}
    for k, (_, results) in enumerate(sample_results(run, iterations, seed)):
        for si, res in enumerate(results):
            for c in CATEGORIES:
                samples[c][k, si] = res.totals[c]
    nominal = {r.id: r.totals["gwp100"] for r in run.results()}
    order = sorted(ids, key=lambda s: nominal[s])
    g = samples["gwp100"]
    same_rank = np.all(np.diff(g[:, [ids.index(s) for s in order]], axis=1) >= 0, axis=1)
    out: dict[str, Any] = {
        "iterations": iterations,
        "seed": seed,
        "distribution": DISTRIBUTION,
        "parameters": names,
        "scenarios": {},
        "gwp_nominal_order": order,
        "p_gwp_order_holds": float(same_rank.mean()),
        # P(row scenario has lower GWP than column scenario), same draws for both
        "p_gwp_lower": {
            a: {b: float((g[:, i] < g[:, j]).mean()) for j, b in enumerate(ids) if b != a}
            for i, a in enumerate(ids)
        },
    }
    for si, sid in enumerate(ids):
        out["scenarios"][sid] = {
            run.method.categories[c]["key"]: {
                "mean": float(samples[c][:, si].mean()),
                "p5": float(np.quantile(samples[c][:, si], 0.05)),
                "p50": float(np.quantile(samples[c][:, si], 0.50)),
                "p95": float(np.quantile(samples[c][:, si], 0.95)),
            }
            for c in CATEGORIES
        }
    return out


def sensitivity(run: StudyRun, top: int = 5) -> dict[str, Any]:
    """One-at-a-time GWP sensitivity: electricity mix, utilisation, recycling, life, ranges."""
    base = {r.id: r.totals["gwp100"] for r in run.results()}
    grids = run.db.ids("electricity")
    out: dict[str, Any] = {
        "gwp100_kg_co2eq_nominal": base,
        "grid": {},
        "utilisation": {},
        "recycled_share": {},
        "life_factor": {},
        "tornado": {},
    }
    for sc in run.study.scenarios:
        out["grid"][sc.id] = {g: run.evaluate(sc, grid=g).totals["gwp100"] for g in grids}
        for i, step in enumerate(sc.processing):
            est = run.energies[sc.id].get(i)
            if step.utilisation is None or est is None:
                continue
            pts = {}
            for u in (0.1, 0.25, 0.5, 0.75, 1.0):
                en = dict(run.energies[sc.id])
                if est.provenance.get("basis") == "pinned":
                    en[i] = step_energy(step, sc.part_mass_kg.value, "pinned", None, u)
                else:
                    en[i] = step_energy(step, sc.part_mass_kg.value, "model", None, u)
                pts[str(u)] = run.evaluate(sc, energies=en).totals["gwp100"]
            out["utilisation"][sc.id] = pts
        if sc.recycled_material:
            out["recycled_share"][sc.id] = {
                str(r): run.evaluate(sc, {f"{sc.id}.recycled_share": r}).totals["gwp100"]
                for r in (0.0, 0.25, 0.5, 0.75)
            }
        out["life_factor"][sc.id] = {
            str(L): run.evaluate(sc, {f"{sc.id}.life_factor": L}).totals["gwp100"]
            for L in (1.0, 1.5, 2.0, 3.0)
        }
    params = uncertain_parameters(run)
    for sc in run.study.scenarios:
        swings = []
        for p, n in params.items():
            lo = run.evaluate(sc, {p: n.low}).totals["gwp100"]
            hi = run.evaluate(sc, {p: n.high}).totals["gwp100"]
            if lo != hi:
                swings.append((abs(hi - lo), p, lo, hi))
        swings.sort(reverse=True)
        out["tornado"][sc.id] = [
            {"parameter": p, "gwp_at_low": lo, "gwp_at_high": hi} for _, p, lo, hi in swings[:top]
        ]
    return out
