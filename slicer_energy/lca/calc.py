"""Matrix LCA: technosphere, biosphere and characterisation as sparse matrices.

Names follow Brightway's bw2calc so the algebra reads like the textbook (Heijungs & Suh
2002): ``supply_array = solve(technosphere_matrix, demand_array)``;
``inventory = biosphere_matrix @ diag(supply_array)``;
``characterized_inventory = characterization_matrix @ inventory``; ``score`` = row sums.
The technosphere is factorised once (``scipy.sparse.linalg.splu``) and reused for every
demand (contribution by stage, Monte Carlo draws with the same structure): solving is
cheaper and numerically safer than forming the inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..errors import LCAError
from .data import CATEGORIES, Flow, Method


@dataclass
class System:
    """A flattened product system: activity i produces product i (square technosphere).

    ``technosphere`` entries are (product row, activity column, amount): outputs positive,
    inputs negative. ``biosphere`` entries are (flow, activity column, amount).
    ``missing[j]`` maps category -> reason for activities lacking data in that category.
    """

    activities: list[str]
    technosphere: list[tuple[int, int, float]]
    biosphere: list[tuple[Flow, int, float]]
    missing: dict[int, dict[str, str]] = field(default_factory=dict)
    basis: dict[int, dict[str, str]] = field(default_factory=dict)  # j -> category -> basis
    linked: dict[int, dict[str, float]] = field(default_factory=dict)  # USLCI linked shares

    def index(self, name: str) -> int:
        return self.activities.index(name)


def build_matrices(system: System, method: Method, categories: Sequence[str] = CATEGORIES):
    """Load step: (technosphere_matrix, biosphere_matrix, characterization_matrix, flows)."""
    n = len(system.activities)
    rows = [r for r, _, _ in system.technosphere]
    cols = [c for _, c, _ in system.technosphere]
    vals = [v for _, _, v in system.technosphere]
    technosphere_matrix = sp.csc_matrix((vals, (rows, cols)), shape=(n, n), dtype=float)
    flows: list[Flow] = list(dict.fromkeys([f for f, _, _ in system.biosphere]))
    fidx = {f: i for i, f in enumerate(flows)}
    if system.biosphere:
        b_rows = [fidx[f] for f, _, _ in system.biosphere]
        b_cols = [j for _, j, _ in system.biosphere]
        b_vals = [a for _, _, a in system.biosphere]
    else:
        b_rows, b_cols, b_vals = [], [], []
    biosphere_matrix = sp.csr_matrix((b_vals, (b_rows, b_cols)), shape=(len(flows), n), dtype=float)
    c_rows, c_cols, c_vals = [], [], []
    for ci, cat in enumerate(categories):
        for fi, f in enumerate(flows):
            cf = method.cf(cat, f)
            if cf is not None:
                c_rows.append(ci)
                c_cols.append(fi)
                c_vals.append(cf)
    characterization_matrix = sp.csr_matrix(
        (c_vals, (c_rows, c_cols)), shape=(len(categories), len(flows)), dtype=float
    )
    return technosphere_matrix, biosphere_matrix, characterization_matrix, flows


class LCA:
    """One calculation over a :class:`System` and a :class:`Method`."""

    def __init__(self, system: System, method: Method, categories: Sequence[str] = CATEGORIES):
        self.system = system
        self.method = method
        self.categories = tuple(categories)
        (
            self.technosphere_matrix,
            self.biosphere_matrix,
            self.characterization_matrix,
            self.flows,
        ) = build_matrices(system, method, self.categories)
        n = self.technosphere_matrix.shape[0]
        if self.technosphere_matrix.shape != (n, n):  # pragma: no cover - built square
            raise LCAError(f"technosphere is {self.technosphere_matrix.shape}, not square")
        try:
            self._lu = splu(self.technosphere_matrix.tocsc())
        except RuntimeError as exc:
            raise LCAError(f"technosphere matrix is singular ({exc}); check the inputs") from None

    def demand_array(self, demand: dict[str, float]) -> np.ndarray:
        f = np.zeros(len(self.system.activities))
        for name, amount in demand.items():
            f[self.system.index(name)] = amount
        return f

    def solve_linear_system(self, demand_array: np.ndarray) -> np.ndarray:
        """supply = A^-1 f, by the stored LU factors (never by forming the inverse)."""
        supply_array = self._lu.solve(demand_array)
        if not np.all(np.isfinite(supply_array)):
            raise LCAError("technosphere solve gave non-finite supply; matrix is ill-conditioned")
        return supply_array

    def inventory(self, supply_array: np.ndarray) -> sp.csr_matrix:
        """Elementary flows by activity: B @ diag(s)."""
        return self.biosphere_matrix @ sp.diags(supply_array)

    def characterized_inventory(self, supply_array: np.ndarray) -> sp.csr_matrix:
        """Impacts by category and activity: C @ B @ diag(s)."""
        return self.characterization_matrix @ self.inventory(supply_array)

    def score(self, supply_array: np.ndarray) -> np.ndarray:
        """Impact totals by category (C @ B @ s)."""
        return self.characterization_matrix @ (self.biosphere_matrix @ supply_array)

    def shares(self, supply_array: np.ndarray) -> dict[str, dict[str, float | None]]:
        """Per category, the share of the absolute contributions by data basis (``uslci``,
        ``sourced``, ``proxy``) and the USLCI link share weighted by the USLCI contributions."""
        ci = abs(self.characterized_inventory(supply_array).tocsc())
        out: dict[str, dict[str, float | None]] = {}
        for c, cat in enumerate(self.categories):
            by_act = np.asarray(ci.getrow(c).todense()).ravel()
            total = float(by_act.sum())
            acc = dict.fromkeys(("uslci", "sourced", "proxy"), 0.0)
            linked = usl = 0.0
            for j in np.flatnonzero(by_act):
                v = float(by_act[j])
                acc[self.system.basis.get(j, {}).get(cat, "sourced")] += v
                if cat in self.system.linked.get(j, {}):
                    usl += v
                    linked += v * self.system.linked[j][cat]
            out[cat] = {f"{k}_share": (v / total if total else 0.0) for k, v in acc.items()}
            out[cat]["uslci_linked_share"] = linked / usl if usl else None
        return out

    def substances(self, supply_array: np.ndarray, cat: str) -> dict[str, float]:
        """Contributions to ``cat`` by substance (flow name), largest first."""
        g = self.biosphere_matrix @ supply_array
        row = self.characterization_matrix.getrow(self.categories.index(cat)).toarray().ravel()
        out: dict[str, float] = {}
        for f, v in zip(self.flows, row * g, strict=True):
            if v:
                out[f[0]] = out.get(f[0], 0.0) + float(v)
        return dict(sorted(out.items(), key=lambda kv: -abs(kv[1])))

    def missing(self, supply_array: np.ndarray, tol: float = 0.0) -> dict[str, list[str]]:
        """Per category, the activities in use whose data for it are missing."""
        out: dict[str, list[str]] = {c: [] for c in self.categories}
        for j, cats in self.system.missing.items():
            if abs(supply_array[j]) > tol:
                for c, reason in cats.items():
                    if c in out:
                        out[c].append(f"{self.system.activities[j]}: {reason}")
        return out
