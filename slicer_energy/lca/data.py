"""Inventory data: sourced numbers, background processes and characterisation factors.

Everything here is read from ``lca/`` (packaged as data, see :mod:`slicer_energy.resources`).
A number is a :class:`Num`: value, the source that vouches for it and, where a source
gives one, a ``low``/``high`` range used by Monte Carlo and sensitivity. A background
process lists the categories it has *no data* for in ``missing``; the engine carries
that through, so a total that lacks a contribution is reported as incomplete, never as
if the missing part were zero.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ProfileError
from ..profiles import check_known_keys, load_sourced_toml
from ..resources import data_dir

CATEGORIES = ("gwp100", "adp", "htp", "ap")
PRECHARACTERISED = ("GWP100, pre-characterised", "aggregate")
BACKGROUND_KINDS = ("electricity", "material", "transport", "fuel", "end_of_life")
_KIND_FILES = {
    "electricity": "electricity.toml",
    "material": "materials.toml",
    "transport": "transport.toml",
    "fuel": "fuels.toml",
    "end_of_life": "end_of_life.toml",
}


@dataclass(frozen=True)
class Num:
    """A sourced number; ``low``/``high`` bound it where a source (or assumption) gives a range."""

    value: float
    source: str
    low: float | None = None
    high: float | None = None

    @property
    def uncertain(self) -> bool:
        return self.low is not None and self.high is not None and self.low != self.high


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_num(where: str, key: str, raw: Any, inherited_source: str | None = None) -> Num:
    """Turn ``{value, source, low?, high?}`` (or a bare number under a table source) into a Num.

    Raises :class:`ProfileError` naming file and key when the value is missing, not a
    number, has no source, or lies outside its own range.
    """
    if isinstance(raw, Mapping):
        if "value" not in raw:
            raise ProfileError(f"{where}: {key} has no 'value' (missing factor)")
        check_known_keys(f"{where}: {key}", raw, {"value", "source", "low", "high", "unit"})
        value, source = raw["value"], raw.get("source", inherited_source)
        low, high = raw.get("low"), raw.get("high")
    else:
        value, source, low, high = raw, inherited_source, None, None
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ProfileError(f"{where}: {key} = {value!r} is not a finite number")
    if not source:
        raise ProfileError(f'{where}: {key} = {value!r} has no source; add source = "..."')
    for name, b in (("low", low), ("high", high)):
        if b is not None and not _is_number(b):
            raise ProfileError(f"{where}: {key}.{name} = {b!r} is not a number")
    if (low is None) != (high is None):
        raise ProfileError(f"{where}: {key} needs both low and high, or neither")
    if low is not None and not (low <= value <= high):
        raise ProfileError(f"{where}: {key} = {value} lies outside its range [{low}, {high}]")
    return Num(
        float(value),
        str(source),
        None if low is None else float(low),
        None if high is None else float(high),
    )


def read_toml(path: Path) -> dict[str, Any]:
    """Raw TOML after the project-wide source check (every number has a source)."""
    load_sourced_toml(path)  # raises ProfileError naming the key of an unsourced number
    return tomllib.loads(path.read_text(encoding="utf-8"))


Flow = tuple[str, str]  # (name, top-level compartment)


def parse_flow(where: str, key: str) -> Flow:
    name, sep, comp = key.partition("|")
    if not sep or not name or not comp:
        raise ProfileError(f"{where}: flow key {key!r} must be 'name|compartment'")
    return (name, comp)


@dataclass(frozen=True)
class UslciLink:
    """A background process's scores in ``categories`` taken from a USLCI process of
    ``lca/background/uslci.csv``: ``scale`` units of it per unit of this product, times this
    product's own GWP over the USLCI process's GWP when ``per_gwp`` (a proxy that scales a
    pollutant profile by fossil carbon). ``proxy`` names why, when it stands in for other data."""

    process: str
    categories: tuple[str, ...]
    scale: Num
    per_gwp: bool = False
    proxy: str = ""


@dataclass(frozen=True)
class UslciScores:
    """One USLCI process's cradle-to-gate score per category: total, linked share, substances."""

    total: dict[str, float]
    linked_share: dict[str, float]
    substances: dict[str, list[tuple[str, float]]]  # category -> (substance, score)


@dataclass
class BackgroundProcess:
    """One background activity producing one unit of its product."""

    key: str  # "kind:id", e.g. "electricity:DE"
    name: str
    unit: str
    scope: str
    flows: dict[Flow, Num] = field(default_factory=dict)
    inputs: dict[str, Num] = field(default_factory=dict)  # other background keys
    missing: dict[str, str] = field(default_factory=dict)  # category -> reason
    proxy: dict[str, str] = field(default_factory=dict)  # category -> why its own flows are a proxy
    uslci: UslciLink | None = None
    path: Path | None = None


@dataclass
class Database:
    processes: dict[str, BackgroundProcess]
    uslci: dict[str, UslciScores] = field(default_factory=dict)

    def ids(self, kind: str) -> list[str]:
        return sorted(k.split(":", 1)[1] for k in self.processes if k.startswith(kind + ":"))

    def get(self, key: str, where: str) -> BackgroundProcess:
        try:
            return self.processes[key]
        except KeyError:
            kind = key.split(":", 1)[0]
            known = ", ".join(self.ids(kind)) or "(none)"
            raise ProfileError(f"{where}: unknown {kind} {key!r}; known: {known}") from None


def load_background(root: Path | None = None) -> Database:
    """Read every background file of ``lca/background`` and check links between them."""
    root = Path(root) if root else data_dir("lca") / "background"
    procs: dict[str, BackgroundProcess] = {}
    allowed = {"name", "unit", "scope", "flows", "inputs", "missing", "proxy", "uslci"}
    for kind, fname in _KIND_FILES.items():
        path = root / fname
        raw = read_toml(path)
        for pid, table in raw.items():
            where = f"{path}: [{pid}]"
            if not isinstance(table, Mapping):
                raise ProfileError(f"{where}: expected a table")
            check_known_keys(where, table, allowed)
            for req in ("name", "unit"):
                if req not in table:
                    raise ProfileError(f"{where}: missing key {req!r}")
            missing = dict(table.get("missing", {}))
            proxy = dict(table.get("proxy", {}))
            bad = sorted((set(missing) | set(proxy)) - set(CATEGORIES))
            if bad:
                raise ProfileError(f"{where}: missing/proxy name unknown categories {bad}")
            proc = BackgroundProcess(
                key=f"{kind}:{pid}",
                name=str(table["name"]),
                unit=str(table["unit"]),
                scope=str(table.get("scope", "")),
                missing={k: str(v) for k, v in missing.items()},
                proxy={k: str(v) for k, v in proxy.items()},
                uslci=_uslci_link(where, table["uslci"]) if "uslci" in table else None,
                path=path,
            )
            for fk, v in table.get("flows", {}).items():
                proc.flows[parse_flow(where, fk)] = parse_num(where, f"flows.{fk}", v)
            for ik, v in table.get("inputs", {}).items():
                proc.inputs[ik] = parse_num(where, f"inputs.{ik}", v)
            procs[proc.key] = proc
    db = Database(procs, load_uslci_scores(root / "uslci.csv"))
    for p in procs.values():
        for ik in p.inputs:
            db.get(ik, f"{p.path}: [{p.key.split(':', 1)[1]}] inputs")
        if p.uslci and p.uslci.process not in db.uslci:
            known = ", ".join(sorted(db.uslci))
            raise ProfileError(f"{p.path}: [{p.key}] uslci.process {p.uslci.process!r} is not in "
                               f"uslci.csv; known: {known}")  # fmt: skip
    return db


def _uslci_link(where: str, raw: Any) -> UslciLink:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: uslci must be a table")
    check_known_keys(f"{where}: uslci", raw, {"process", "categories", "scale", "per_gwp", "proxy"})
    cats = tuple(raw.get("categories", ()))
    if not cats or set(cats) - set(CATEGORIES):
        raise ProfileError(f"{where}: uslci.categories must list some of {', '.join(CATEGORIES)}")
    scale = raw.get("scale", {"value": 1.0, "source": "definition: one unit per unit"})
    return UslciLink(str(raw.get("process", "")), cats, parse_num(where, "uslci.scale", scale),
                     bool(raw.get("per_gwp", False)), str(raw.get("proxy", "")))  # fmt: skip


def load_uslci_scores(path: Path) -> dict[str, UslciScores]:
    """``lca/background/uslci.csv`` (written by scripts/build_lca_background.py)."""
    out: dict[str, UslciScores] = {}
    for i, row in enumerate(_read_csv(path), start=2):
        try:
            key, cat, sub, score = (
                row["process"],
                row["category"],
                row["substance"],
                float(row["score"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ProfileError(
                f"{path}: row {i} is not process,category,substance,...,score"
            ) from None
        s = out.setdefault(key, UslciScores({}, {}, {c: [] for c in CATEGORIES}))
        if sub == "(total)":
            s.total[cat] = score
            s.linked_share[cat] = float(row["linked_share"])
        else:
            s.substances[cat].append((sub, score))
    return out


@dataclass
class Method:
    """Characterisation factors by category and flow, with the GWP set that was used."""

    gwp_set: str
    factors: dict[str, dict[Flow, Num]]  # category -> flow -> CF
    categories: dict[str, dict[str, Any]]  # metadata from categories.toml

    def cf(self, cat: str, flow: Flow) -> float | None:
        """The factor of ``flow`` in ``cat``; a score already characterised in ``cat`` (compartment
        ``aggregate:<cat>``, from lca/background/uslci.csv) counts once."""
        if flow[1] == f"aggregate:{cat}":
            return 1.0
        n = self.factors.get(cat, {}).get(flow)
        return None if n is None else n.value

    def flows(self) -> list[Flow]:
        seen: dict[Flow, None] = {}
        for cat in CATEGORIES:
            for f in self.factors.get(cat, {}):
                seen[f] = None
        return list(seen)


def _read_csv(path: Path) -> list[dict[str, str]]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


GWP_SETS = ("ar5", "ar4", "tar")


@lru_cache(maxsize=8)
def load_method(gwp_set: str = "ar5", root: str | None = None) -> Method:
    """CML-IA v4.8 factors; the gwp100 rows replaced by ``gwp_set`` (ar5 = CML-IA 4.8's own)."""
    folder = Path(root) if root else data_dir("lca") / "methods"
    if gwp_set not in GWP_SETS:
        raise ProfileError(f"unknown GWP set {gwp_set!r}; choose one of {', '.join(GWP_SETS)}")
    factors: dict[str, dict[Flow, Num]] = {c: {} for c in CATEGORIES}
    path = folder / "cml-ia-4.8.csv"
    for i, row in enumerate(_read_csv(path), start=2):
        where = f"{path}: row {i}"
        cat = row["category"]
        if cat not in factors:
            raise ProfileError(f"{where}: unknown category {cat!r}")
        factors[cat][(row["flow"], row["compartment"])] = parse_num(
            where, row["flow"], {"value": float(row["cf"]), "source": row["source"]}
        )
    if gwp_set != "ar5":
        path = folder / "gwp-sets.csv"
        for i, row in enumerate(_read_csv(path), start=2):
            if row["set"] == gwp_set:
                factors["gwp100"][(row["flow"], row["compartment"])] = parse_num(
                    f"{path}: row {i}",
                    row["flow"],
                    {"value": float(row["cf"]), "source": row["source"]},
                )
    cats = tomllib.loads((folder / "categories.toml").read_text(encoding="utf-8"))
    return Method(gwp_set=gwp_set, factors=factors, categories=cats)
