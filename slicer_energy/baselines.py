"""Conventional twins of printed parts: injection moulding and aluminium casting + machining.

Both are specific-energy models (energy per kg), not process simulations: the point is
a sourced reference level to hold the AM models against.

* Injection moulding: electricity at the machine per kg by machine type (hydraulic,
  hybrid, all-electric), plus optionally the mould's embodied energy spread over the
  production run (``mould_amortisation_parts``). Primary-energy SEC (Thiriez 2006) is
  reported in ``extra`` on its own basis, never mixed with electricity.
* Casting + machining (study scenario FZ1): metal poured = part / ((1 − machining loss)
  × casting yield); energy = poured × casting energy per kg + removed × machining energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import ProfileError, SettingsError
from .estimate import J_PER_KWH, Estimate
from .profiles import check_known_keys, check_range, find_profile, load_sourced_toml

IM_MACHINE_TYPES = ("hydraulic", "hybrid", "all-electric")


@dataclass(frozen=True)
class InjectionMoulding:
    electricity_kwh_per_kg: dict[str, float]
    primary_mj_per_kg: dict[str, float]
    mould_mass_kg: float
    mould_embodied_kwh_per_kg: float
    mould_machining_kwh_per_kg: float
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CastingMachining:
    casting_yield: float
    machining_loss: float
    casting_kwh_per_kg_poured: float
    casting_range_kwh_per_kg: tuple[float, float]
    machining_kwh_per_kg_removed: float
    density_g_cm3: float
    primary_al_kwh_per_kg: float
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)


def load_injection_moulding(name: str = "injection-moulding") -> InjectionMoulding:
    path = find_profile("hardware", name)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    check_known_keys(
        where, v, {"name", "process", "electricity_kwh_per_kg", "primary_mj_per_kg", "mould"}
    )
    elec = v.get("electricity_kwh_per_kg", {})
    prim = v.get("primary_mj_per_kg", {})
    for table, t in (("electricity_kwh_per_kg", elec), ("primary_mj_per_kg", prim)):
        check_known_keys(f"{where} [{table}]", t, set(IM_MACHINE_TYPES))
        for k in IM_MACHINE_TYPES:
            if k not in t:
                raise ProfileError(f"{where} [{table}]: missing {k}")
            check_range(where, f"{table}.{k}", t[k], 0.01, 100)
    mould = v.get("mould", {})
    check_known_keys(
        f"{where} [mould]", mould, {"mass_kg", "embodied_kwh_per_kg", "machining_kwh_per_kg"}
    )
    return InjectionMoulding(
        electricity_kwh_per_kg={k: float(elec[k]) for k in IM_MACHINE_TYPES},
        primary_mj_per_kg={k: float(prim[k]) for k in IM_MACHINE_TYPES},
        mould_mass_kg=check_range(where, "mould.mass_kg", mould["mass_kg"], 0, 100_000),
        mould_embodied_kwh_per_kg=check_range(
            where, "mould.embodied_kwh_per_kg", mould["embodied_kwh_per_kg"], 0, 1000
        ),
        mould_machining_kwh_per_kg=check_range(
            where, "mould.machining_kwh_per_kg", mould["machining_kwh_per_kg"], 0, 1000
        ),
        path=path,
        sources=prof.sources,
    )


def load_casting(name: str = "casting-machining") -> CastingMachining:
    path = find_profile("hardware", name)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    check_known_keys(where, v, {"name", "process", "yield", "energy", "material"})
    y, e, m = v["yield"], v["energy"], v["material"]
    lo, hi = e["casting_range_kwh_per_kg"]
    return CastingMachining(
        casting_yield=check_range(where, "yield.casting_yield", y["casting_yield"], 0.05, 1.0),
        machining_loss=check_range(where, "yield.machining_loss", y["machining_loss"], 0.0, 0.95),
        casting_kwh_per_kg_poured=check_range(
            where, "energy.casting_kwh_per_kg_poured", e["casting_kwh_per_kg_poured"], 0.1, 200
        ),
        casting_range_kwh_per_kg=(float(lo), float(hi)),
        machining_kwh_per_kg_removed=check_range(
            where, "energy.machining_kwh_per_kg_removed", e["machining_kwh_per_kg_removed"], 0, 200
        ),
        density_g_cm3=check_range(where, "material.density_g_cm3", m["density_g_cm3"], 1, 25),
        primary_al_kwh_per_kg=check_range(
            where, "material.primary_al_kwh_per_kg", m["primary_al_kwh_per_kg"], 0, 200
        ),
        path=path,
        sources=prof.sources,
    )


def injection_moulding(
    part_mass_g: float,
    machine_type: str = "all-electric",
    mould_amortisation_parts: int | None = None,
    profile: InjectionMoulding | None = None,
) -> Estimate:
    """Electricity per moulded part; with ``mould_amortisation_parts`` the mould's share too."""
    prof = profile or load_injection_moulding()
    if machine_type not in IM_MACHINE_TYPES:
        raise SettingsError(
            f"unknown injection moulding machine type {machine_type!r}; "
            f"choose one of {', '.join(IM_MACHINE_TYPES)}"
        )
    if not part_mass_g > 0:
        raise SettingsError(f"part mass must be positive, got {part_mass_g} g")
    kg = part_mass_g / 1000.0
    process_j = prof.electricity_kwh_per_kg[machine_type] * kg * J_PER_KWH
    mould_j = 0.0
    if mould_amortisation_parts is not None:
        if mould_amortisation_parts < 1:
            raise SettingsError(
                f"mould amortisation needs a run of >= 1 parts, got {mould_amortisation_parts}"
            )
        mould_kwh = prof.mould_mass_kg * (
            prof.mould_embodied_kwh_per_kg + prof.mould_machining_kwh_per_kg
        )
        mould_j = mould_kwh * J_PER_KWH / mould_amortisation_parts
    return Estimate(
        process="injection-moulding",
        machine=machine_type,
        time_s=0.0,
        energy_j=process_j + mould_j,
        energy_by_phase_j={"moulding": process_j, "mould_amortisation": mould_j},
        material_g=part_mass_g,
        settings={
            "machine_type": machine_type,
            "mould_run_parts": mould_amortisation_parts,
            "material": "polymer (same mass)",
        },
        provenance={"profile": str(prof.path), "kind": "default"},
        extra={
            "kwh_per_kg": (process_j + mould_j) / J_PER_KWH / kg,
            "primary_mj_per_kg": prof.primary_mj_per_kg[machine_type],
            "basis": "electricity at the machine",
        },
    )


def casting_machining(part_mass_g: float, profile: CastingMachining | None = None) -> Estimate:
    """Energy and metal of a cast-and-machined aluminium part of ``part_mass_g``."""
    prof = profile or load_casting()
    if not part_mass_g > 0:
        raise SettingsError(f"part mass must be positive, got {part_mass_g} g")
    casting_g = part_mass_g / (1.0 - prof.machining_loss)
    poured_g = casting_g / prof.casting_yield
    removed_g = casting_g - part_mass_g
    cast_j = poured_g / 1000.0 * prof.casting_kwh_per_kg_poured * J_PER_KWH
    mach_j = removed_g / 1000.0 * prof.machining_kwh_per_kg_removed * J_PER_KWH
    lo, hi = prof.casting_range_kwh_per_kg
    return Estimate(
        process="casting",
        machine="casting-machining",
        time_s=0.0,
        energy_j=cast_j + mach_j,
        energy_by_phase_j={"casting": cast_j, "machining": mach_j},
        material_g=part_mass_g,
        waste_g=poured_g - part_mass_g,
        settings={
            "material": "aluminium",
            "casting_yield": prof.casting_yield,
            "machining_loss": prof.machining_loss,
        },
        provenance={"profile": str(prof.path), "kind": "default"},
        extra={
            "metal_poured_g": poured_g,
            "casting_g": casting_g,
            "machining_removed_g": removed_g,
            "kwh_per_kg": (cast_j + mach_j) / J_PER_KWH / (part_mass_g / 1000.0),
            "casting_energy_range_kwh": [poured_g / 1000 * lo, poured_g / 1000 * hi],
            "primary_al_electrolysis_kwh": poured_g / 1000.0 * prof.primary_al_kwh_per_kg,
            "basis": "all energy carriers (casting), electricity (machining)",
        },
    )
