"""The study's scenarios as data: load, expand variants, validate against the database.

A scenario file (``lca/scenarios/<study>.toml``) holds a ``[part]`` table and a list of
``[[scenario]]`` tables; a scenario with ``[[scenario.variant]]`` entries is reported only
through its variants (``H3-30``, ``FZ2-min``, ...), each a deep merge of ``set`` into the
base. Validation names the file, the scenario and the key: an unknown transport mode, a
negative distance, a factor without a value or source, a reference to a process the
database lacks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProfileError
from ..paths import safe_name
from ..profiles import check_known_keys
from ..resources import data_dir
from .data import Database, Num, parse_num, read_toml

STUDIES = {"phone-case": "phone-case.toml", "aircraft-part": "aircraft-part.toml"}
CARRIES = ("material", "part")

_SCENARIO_KEYS = {
    "id", "label", "grid", "material", "recycled_material", "recycled_share",
    "process_waste_share", "waste_route", "end_of_life", "processing", "transport",
    "use_phase", "life_factor", "part_mass_kg", "part_sample", "variant",
}  # fmt: skip
_STEP_KEYS = {
    "step", "process", "machine", "settings", "utilisation", "pinned_kwh",
    "pinned_kwh_per_kg", "pinned_fuel_kwh_per_kg", "energy", "missing_reason", "grid",
    "part_sample",
}  # fmt: skip
_LEG_KEYS = {"leg", "mode", "carries", "distance_km"}


@dataclass
class ProcessingStep:
    """One processing step; its energy comes from a process model or a pinned figure."""

    step: str
    process: str
    machine: str
    part_sample: str
    settings: dict[str, Any] = field(default_factory=dict)
    utilisation: Num | None = None
    pinned_kwh: Num | None = None  # per part
    pinned_kwh_per_kg: Num | None = None  # per kg of part
    # fuel (lca/background/fuels.toml id) -> kWh of fuel per kg of part, beside the electricity
    pinned_fuel_kwh_per_kg: dict[str, Num] = field(default_factory=dict)
    missing_reason: str | None = None  # energy = "missing"
    grid: str | None = None
    path: str = ""  # parameter path, e.g. "H5.processing[0]"


@dataclass
class TransportLeg:
    leg: str
    mode: str
    carries: str
    distance_km: Num
    path: str = ""


@dataclass
class Scenario:
    id: str
    label: str
    base_id: str
    grid: str
    material: str
    process_waste_share: Num
    waste_route: str
    end_of_life: list[tuple[str, Num]]
    processing: list[ProcessingStep]
    transport: list[TransportLeg]
    part_mass_kg: Num
    part_sample: str
    recycled_material: str | None = None
    recycled_share: Num = field(default_factory=lambda: Num(0.0, "definition: no recycled content"))
    use_phase: list[tuple[str, Num]] = field(default_factory=list)
    life_factor: Num = field(default_factory=lambda: Num(1.0, "definition: reference life"))
    part_mass_path: str = "part.mass_kg"  # shared by scenarios using the study's part
    file: str = ""


@dataclass
class Study:
    name: str
    title: str
    functional_unit: str
    source: str
    scenarios: list[Scenario]
    path: Path

    def get(self, sid: str) -> Scenario:
        for s in self.scenarios:
            if s.id == sid:
                return s
        raise ProfileError(f"{self.path}: no scenario {sid!r}; known: {self.ids()}")

    def ids(self) -> list[str]:
        return [s.id for s in self.scenarios]


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge for variants: tables merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and "value" not in v:
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def study_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    if name_or_path not in STUDIES:
        raise ProfileError(f"unknown study {name_or_path!r}; known: {', '.join(STUDIES)}")
    return data_dir("lca") / "scenarios" / STUDIES[name_or_path]


def load_study(name_or_path: str, db: Database) -> Study:
    """Load, expand variants and validate one study file."""
    path = study_path(name_or_path)
    raw = read_toml(path)
    where = str(path)
    check_known_keys(
        where, raw, {"study", "title", "functional_unit", "source", "part", "scenario"}
    )
    for req in ("study", "functional_unit", "part", "scenario"):
        if req not in raw:
            raise ProfileError(f"{where}: missing key {req!r}")
    part = raw["part"]
    check_known_keys(f"{where}: [part]", part, {"sample", "mass_kg", "source"})
    if "mass_kg" not in part:
        raise ProfileError(f"{where}: [part] has no mass_kg (missing factor)")
    part_mass = parse_num(where, "part.mass_kg", part["mass_kg"])
    if part_mass.value <= 0:
        raise ProfileError(f"{where}: part.mass_kg = {part_mass.value} must be positive")
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for i, base in enumerate(raw["scenario"]):
        bid = base.get("id") or f"scenario[{i}]"
        check_known_keys(f"{where}: scenario {bid}", base, _SCENARIO_KEYS)
        variants = base.get("variant") or [{"id": bid, "set": {}}]
        for var in variants:
            check_known_keys(f"{where}: scenario {bid} variant", var, {"id", "label", "set"})
            merged = _merge({k: v for k, v in base.items() if k != "variant"}, var.get("set", {}))
            sid = str(var["id"])
            if sid in seen:
                raise ProfileError(f"{where}: duplicate scenario id {sid!r}")
            seen.add(sid)
            label = str(merged.get("label", ""))
            if var.get("label") and sid != bid:
                label = f"{label}; {var['label']}"
            scenarios.append(_parse_scenario(where, sid, bid, label, merged, part, part_mass, db))
    return Study(
        name=safe_name(str(raw["study"]), f"{where}: key 'study'"),
        title=str(raw.get("title", "")),
        functional_unit=str(raw["functional_unit"]),
        source=str(raw.get("source", "")),
        scenarios=scenarios,
        path=path,
    )


def _req(where: str, table: Mapping[str, Any], key: str) -> Any:
    if key not in table:
        raise ProfileError(f"{where}: missing key {key!r} (missing factor)")
    return table[key]


def _parse_scenario(
    file: str,
    sid: str,
    bid: str,
    label: str,
    t: Mapping[str, Any],
    part: Mapping[str, Any],
    part_mass: Num,
    db: Database,
) -> Scenario:
    """One scenario (a variant merged into its base) checked key by key, every background
    process it names looked up in ``db``, so an unknown one fails here with its key."""
    where = f"{file}: scenario {sid}"
    grid = str(_req(where, t, "grid"))
    db.get(f"electricity:{grid}", f"{where}: grid")
    material = str(_req(where, t, "material"))
    db.get(f"material:{material}", f"{where}: material")
    recycled = t.get("recycled_material")
    if recycled is not None:
        db.get(f"material:{recycled}", f"{where}: recycled_material")
    waste_route = str(_req(where, t, "waste_route"))
    db.get(f"end_of_life:{waste_route}", f"{where}: waste_route")
    eol = _end_of_life(where, t, db)
    sample = str(t.get("part_sample", part.get("sample", "")))
    steps = [
        _processing_step(f"{where}: processing[{j}]", s, f"{sid}.processing[{j}]", sample, db)
        for j, s in enumerate(_req(where, t, "processing"))
    ]
    legs = [
        _transport_leg(f"{where}: transport[{j}]", leg, f"{sid}.transport[{j}]", db)
        for j, leg in enumerate(t.get("transport", []))
    ]
    use = [
        _use_phase(f"{where}: use_phase[{j}]", u, db) for j, u in enumerate(t.get("use_phase", []))
    ]

    def num(key: str, lo: float | None = None, hi: float | None = None, default=None) -> Num:
        return _bounded_num(where, t, key, lo, hi, default)

    return Scenario(
        id=sid,
        label=label,
        base_id=bid,
        grid=grid,
        material=material,
        recycled_material=None if recycled is None else str(recycled),
        recycled_share=num("recycled_share", 0.0, 1.0, default=Num(0.0, "definition: none")),
        process_waste_share=num("process_waste_share", 0.0, 0.99),
        waste_route=waste_route,
        end_of_life=eol,
        processing=steps,
        transport=legs,
        part_mass_kg=num("part_mass_kg", 1e-9, None, default=part_mass),
        part_sample=sample,
        use_phase=use,
        life_factor=num("life_factor", 1e-9, None, default=Num(1.0, "definition: reference life")),
        part_mass_path=f"{sid}.part_mass_kg" if "part_mass_kg" in t else "part.mass_kg",
        file=file,
    )


def _bounded_num(
    where: str,
    t: Mapping[str, Any],
    key: str,
    lo: float | None,
    hi: float | None,
    default: Num | None,
) -> Num:
    """``t[key]`` as a number whose value and bounds lie in [lo, hi]; ``default`` when absent
    (none: a missing factor)."""
    if key not in t:
        if default is not None:
            return default
        raise ProfileError(f"{where}: missing key {key!r} (missing factor)")
    n = parse_num(where, key, t[key])
    for v, name in ((n.value, "value"), (n.low, "low"), (n.high, "high")):
        if v is None:
            continue
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ProfileError(
                f"{where}: {key} {name} = {v} is outside the allowed range [{lo}, {hi}]"
            )
    return n


def _end_of_life(where: str, t: Mapping[str, Any], db: Database) -> list[tuple[str, Num]]:
    """The end-of-life routes and their shares, which must sum to 1 (mass balance)."""
    eol: list[tuple[str, Num]] = []
    for j, e in enumerate(_req(where, t, "end_of_life")):
        w = f"{where}: end_of_life[{j}]"
        check_known_keys(w, e, {"route", "share"})
        route = str(_req(w, e, "route"))
        db.get(f"end_of_life:{route}", f"{w}.route")
        share = parse_num(w, "share", _req(w, e, "share"))
        if not 0.0 <= share.value <= 1.0:
            raise ProfileError(f"{w}: share = {share.value} must lie in [0, 1]")
        eol.append((route, share))
    total = sum(s.value for _, s in eol)
    if abs(total - 1.0) > 1e-9:
        raise ProfileError(f"{where}: end_of_life shares sum to {total}, not 1 (mass balance)")
    return eol


def _processing_step(
    w: str, s: Mapping[str, Any], path: str, sample: str, db: Database
) -> ProcessingStep:
    """One ``[[scenario.processing]]`` step: its grid, utilisation, a declared missing
    energy or pinned kWh (electricity, and fuels by name), each checked."""
    check_known_keys(w, s, _STEP_KEYS)
    step = ProcessingStep(
        step=str(s.get("step", s.get("process", ""))),
        process=str(_req(w, s, "process")),
        machine=str(s.get("machine", "")),
        part_sample=str(s.get("part_sample", sample)),
        settings=dict(s.get("settings", {})),
        grid=s.get("grid"),
        path=path,
    )
    if step.grid is not None:
        db.get(f"electricity:{step.grid}", f"{w}.grid")
    if "utilisation" in s:
        step.utilisation = parse_num(w, "utilisation", s["utilisation"])
        if not 0.0 < step.utilisation.value <= 1.0:
            raise ProfileError(f"{w}: utilisation must lie in (0, 1]")
    if s.get("energy") is not None:
        if s["energy"] != "missing":
            raise ProfileError(f'{w}: energy may only be "missing" (got {s["energy"]!r})')
        step.missing_reason = str(s.get("missing_reason") or "not given")
    for key in ("pinned_kwh", "pinned_kwh_per_kg"):
        if key in s:
            n = parse_num(w, key, s[key])
            if n.value < 0 or (n.low is not None and n.low < 0):
                raise ProfileError(f"{w}: {key} = {n.value} must not be negative")
            setattr(step, key, n)
    for fuel, v in s.get("pinned_fuel_kwh_per_kg", {}).items():
        db.get(f"fuel:{fuel}", f"{w}.pinned_fuel_kwh_per_kg")
        n = parse_num(w, f"pinned_fuel_kwh_per_kg.{fuel}", v)
        if n.value < 0 or (n.low is not None and n.low < 0):
            raise ProfileError(f"{w}: pinned_fuel_kwh_per_kg.{fuel} = {n.value} is negative")
        step.pinned_fuel_kwh_per_kg[fuel] = n
    return step


def _transport_leg(w: str, leg: Mapping[str, Any], path: str, db: Database) -> TransportLeg:
    """One ``[[scenario.transport]]`` leg: a known mode, what it carries, a distance >= 0."""
    check_known_keys(w, leg, _LEG_KEYS)
    mode = str(_req(w, leg, "mode"))
    if f"transport:{mode}" not in db.processes:
        raise ProfileError(
            f"{w}.mode: unknown transport mode {mode!r}; known: {', '.join(db.ids('transport'))}"
        )
    carries = str(leg.get("carries", "part"))
    if carries not in CARRIES:
        raise ProfileError(f"{w}.carries = {carries!r}; expected one of {CARRIES}")
    dist = parse_num(w, "distance_km", _req(w, leg, "distance_km"))
    if dist.value < 0 or (dist.low is not None and dist.low < 0):
        raise ProfileError(f"{w}.distance_km = {dist.value} is negative")
    return TransportLeg(str(leg.get("leg", mode)), mode, carries, dist, path)


def _use_phase(w: str, u: Mapping[str, Any], db: Database) -> tuple[str, Num]:
    """One use-phase input: (background key, amount); a bare name is a fuel."""
    check_known_keys(w, u, {"process", "amount"})
    proc = str(_req(w, u, "process"))
    key = proc if ":" in proc else f"fuel:{proc}"
    db.get(key, f"{w}.process")
    return key, parse_num(w, "amount", _req(w, u, "amount"))
