"""Conventional twins of printed parts: injection moulding and aluminium casting + machining.

Both are specific-energy models (energy per kg), not process simulations: the point is
a sourced reference level to hold the AM models against.

* Injection moulding: electricity at the machine per kg by machine type (hydraulic,
  hybrid, all-electric), plus optionally the mould's embodied energy spread over the
  production run (``mould_amortisation_parts``). Primary-energy SEC (Thiriez 2006) is
  reported in ``extra`` on its own basis, never mixed with electricity.
* Casting + machining (study scenario FZ1), per kg of finished part: casting = part /
  (1 − machining loss); metal poured = casting / casting yield (material only); melting
  gas and casting electricity per kg of casting (USLCI's casting processes, which include
  remelting the returns); machining electricity per kg removed. The gas (kWh at its
  heating value) is reported in ``extra["fuels_kwh"]`` so the LCA books it as natural-gas
  combustion, not as electricity.

:func:`baseline_part` makes either twin from a part's geometry (mass = volume × the
profile's density), so ``compare`` and the LCA make the same part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProfileError, SettingsError
from .estimate import J_PER_KWH, Estimate
from .profiles import check_known_keys, check_range, find_profile, load_sourced_toml

IM_MACHINE_TYPES = ("hydraulic", "hybrid", "all-electric")
FUEL_NATURAL_GAS = "natural_gas_industrial"  # lca/background/fuels.toml, per kWh of gas
_CASTING_ENERGY_KEYS = (
    "melting_gas_kwh_per_kg_casting",
    "melting_gas_range_kwh_per_kg_casting",
    "electricity_kwh_per_kg_casting",
    "electricity_range_kwh_per_kg_casting",
    "machining_kwh_per_kg_removed",
    "literature_kwh_per_kg_cast",
)


@dataclass(frozen=True)
class InjectionMoulding:
    electricity_kwh_per_kg: dict[str, float]
    primary_mj_per_kg: dict[str, float]
    mould_mass_kg: float
    mould_embodied_kwh_per_kg: float
    mould_machining_kwh_per_kg: float
    density_g_cm3: float
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CastingMachining:
    casting_yield: float
    machining_loss: float
    gas_kwh_per_kg_casting: float
    gas_range_kwh_per_kg_casting: tuple[float, float]
    electricity_kwh_per_kg_casting: float
    electricity_range_kwh_per_kg_casting: tuple[float, float]
    machining_kwh_per_kg_removed: float
    literature_kwh_per_kg_cast: tuple[float, float]
    density_g_cm3: float
    primary_al_kwh_per_kg: float
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)


def load_injection_moulding(name: str = "injection-moulding") -> InjectionMoulding:
    path = find_profile("hardware", name)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    check_known_keys(
        where,
        v,
        {"name", "process", "electricity_kwh_per_kg", "primary_mj_per_kg", "mould", "material"},
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
        density_g_cm3=_density(where, v),
        path=path,
        sources=prof.sources,
    )


def _density(where: str, v: dict[str, Any]) -> float:
    m = v.get("material", {})
    if "density_g_cm3" not in m:
        raise ProfileError(f"{where}: missing key material.density_g_cm3")
    return check_range(where, "material.density_g_cm3", m["density_g_cm3"], 0.5, 25)


def _pair(where: str, key: str, v: Any, hi: float) -> tuple[float, float]:
    """A [low, high] range read from ``key``, both in [0, hi] and in order."""
    if not (isinstance(v, list) and len(v) == 2):
        raise ProfileError(f"{where}: {key} must be [low, high]")
    lo_v, hi_v = (check_range(where, key, x, 0, hi) for x in v)
    if lo_v > hi_v:
        raise ProfileError(f"{where}: {key} = {v}: low above high")
    return lo_v, hi_v


def load_casting(name: str = "casting-machining") -> CastingMachining:
    path = find_profile("hardware", name)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    check_known_keys(where, v, {"name", "process", "yield", "energy", "material"})
    y, e, m = v["yield"], v["energy"], v["material"]
    check_known_keys(f"{where} [energy]", e, set(_CASTING_ENERGY_KEYS))
    for k in _CASTING_ENERGY_KEYS:
        if k not in e:
            raise ProfileError(f"{where}: missing key energy.{k}")

    def num(key: str, lo: float, hi: float) -> float:
        return check_range(where, f"energy.{key}", e[key], lo, hi)

    def pair(key: str, hi: float) -> tuple[float, float]:
        return _pair(where, f"energy.{key}", e[key], hi)

    return CastingMachining(
        casting_yield=check_range(where, "yield.casting_yield", y["casting_yield"], 0.05, 1.0),
        machining_loss=check_range(where, "yield.machining_loss", y["machining_loss"], 0.0, 0.95),
        gas_kwh_per_kg_casting=num("melting_gas_kwh_per_kg_casting", 0, 200),
        gas_range_kwh_per_kg_casting=pair("melting_gas_range_kwh_per_kg_casting", 200),
        electricity_kwh_per_kg_casting=num("electricity_kwh_per_kg_casting", 0, 200),
        electricity_range_kwh_per_kg_casting=pair("electricity_range_kwh_per_kg_casting", 200),
        machining_kwh_per_kg_removed=num("machining_kwh_per_kg_removed", 0, 200),
        literature_kwh_per_kg_cast=pair("literature_kwh_per_kg_cast", 200),
        density_g_cm3=_density(where, v),
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
    """Energy by carrier and metal of a cast-and-machined aluminium part of ``part_mass_g``."""
    prof = profile or load_casting()
    if not part_mass_g > 0:
        raise SettingsError(f"part mass must be positive, got {part_mass_g} g")
    casting_kg = part_mass_g / 1000.0 / (1.0 - prof.machining_loss)
    poured_g = casting_kg * 1000.0 / prof.casting_yield
    removed_kg = casting_kg - part_mass_g / 1000.0
    melt_kwh = casting_kg * prof.gas_kwh_per_kg_casting
    cast_kwh = casting_kg * prof.electricity_kwh_per_kg_casting
    mach_kwh = removed_kg * prof.machining_kwh_per_kg_removed
    total_kwh = melt_kwh + cast_kwh + mach_kwh
    (g_lo, g_hi), (e_lo, e_hi) = (
        prof.gas_range_kwh_per_kg_casting,
        prof.electricity_range_kwh_per_kg_casting,
    )
    lit_lo, lit_hi = prof.literature_kwh_per_kg_cast
    return Estimate(
        process="casting",
        machine="casting-machining",
        time_s=0.0,
        energy_j=total_kwh * J_PER_KWH,
        energy_by_phase_j={
            "melting": melt_kwh * J_PER_KWH,
            "casting": cast_kwh * J_PER_KWH,
            "machining": mach_kwh * J_PER_KWH,
        },
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
            "casting_g": casting_kg * 1000.0,
            "machining_removed_g": removed_kg * 1000.0,
            "kwh_per_kg": total_kwh / (part_mass_g / 1000.0),
            "fuels_kwh": {FUEL_NATURAL_GAS: melt_kwh},
            "energy_range_kwh": [
                casting_kg * (g_lo + e_lo) + mach_kwh,
                casting_kg * (g_hi + e_hi) + mach_kwh,
            ],
            "literature_casting_kwh": [casting_kg * lit_lo, casting_kg * lit_hi],
            "primary_al_electrolysis_kwh": poured_g / 1000.0 * prof.primary_al_kwh_per_kg,
            "basis": "per kg of finished part; melting: natural gas, casting and machining: "
            "electricity",
        },
    )


def baseline_part(
    loaded: Any,
    process: str,
    machine_type: str = "all-electric",
    mould_amortisation_parts: int | None = None,
) -> Estimate:
    """The conventional twin of a part from its geometry (``loaded.volume_mm3``): mass =
    volume × the profile's density, so ``compare`` and the LCA make the same part."""
    cm3 = float(loaded.volume_mm3) / 1000.0
    if process == "casting":
        prof = load_casting()
        return casting_machining(cm3 * prof.density_g_cm3, prof)
    if process == "injection-moulding":
        im = load_injection_moulding()
        return injection_moulding(
            cm3 * im.density_g_cm3, machine_type, mould_amortisation_parts, im
        )
    raise SettingsError(
        f"no conventional twin for process {process!r}; choose casting or injection-moulding"
    )
