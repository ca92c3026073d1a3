"""One powder-bed machine profile for both processes: polymer SLS and metal MLS.

A profile file (``hardware/sls/*.toml``, ``hardware/mls/*.toml``) has the same tables for
both: ``[chamber]`` (build volume, spacing, margin, and the powder or support the process
adds below/above the parts), ``[exposure]``, ``[power]``, ``[phases]``, ``[materials.NAME]``;
MLS adds ``[gas]`` and the study's ``[variants.low|high]``. What each process requires, and
the allowed range of every number, is its :class:`ProfileSpec` (``SLS_SPEC``, ``MLS_SPEC``);
:func:`load_machine` reads either into one :class:`PowderBedMachine`, which keeps the tables
as they are in the file. Every number is also an attribute named as its key
(``machine.hatch_mm`` is ``machine.exposure["hatch_mm"]``): keys are unique across a
profile's tables, which the loader checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ProfileError, SettingsError
from ..profiles import (
    check_known_keys,
    check_range,
    find_profile,
    load_sourced_toml,
    required_table,
)
from .packing import Chamber

Bounds = tuple[float, float]
WEEK_S = 7 * 86400

# Build volume and placement rules, the same for every powder-bed machine.
_VOLUME: dict[str, Bounds] = {
    "x_mm": (10, 2000),
    "y_mm": (10, 2000),
    "z_mm": (10, 2000),
    "spacing_mm": (0, 50),
    "margin_mm": (0, 100),
    "max_packing_density": (0.01, 1.0),
}
_TABLES = ("bed", "exposure", "power", "phases", "gas")  # where attribute look-up searches
_DRAWABLE = ("exposure", "power", "phases", "gas")  # numbers that leave the geometry as it is

# Keys both processes' tables hold (each process adds its own and may narrow a range).
_EXPOSURE: dict[str, Bounds] = {
    "laser_power_w": (1, 10_000),
    "contour_speed_mm_s": (10, 50_000),
    "recoat_s": (0, 300),
    "ambient_c": (-20, 50),
}
_POWER: dict[str, Bounds] = {
    "electronics_w": (0, 50_000),
    "cooldown_w": (0, 50_000),
    "laser_efficiency": (0.01, 1.0),
}
_PHASES: dict[str, Bounds] = {"warmup_s": (0, WEEK_S), "cooldown_s": (0, WEEK_S)}
# Every material: densities and heat capacity (mass balance, sensible heat) and what the
# laser bound needs (melting point, latent heat, absorptivity at the laser's wavelength).
_MATERIAL: dict[str, Bounds] = {
    "cp_j_per_kg_k": (100, 4000),
    "melting_c": (50, 3500),
    "latent_heat_j_per_g": (10, 2000),
    "absorptivity": (0.01, 1.0),
}


@dataclass(frozen=True)
class ProfileSpec:
    """What one process's profile must hold, and the allowed range of each number."""

    process: str
    stack_decks: bool  # may parts float in powder above others (see packing.Chamber)
    bed: dict[str, Bounds]  # the process's own [chamber] keys beside the build volume
    tables: dict[str, dict[str, Bounds]]  # required tables, every key required
    material: dict[str, Bounds]  # every [materials.NAME] table, every key required
    variant: dict[str, Bounds] = field(default_factory=dict)  # optional keys; {}: no variants

    def __post_init__(self) -> None:
        keys = [k for t in (self.bed, *self.tables.values()) for k in t]
        if len(keys) != len(set(keys)):  # PowderBedMachine's attribute look-up relies on it
            raise ValueError(f"{self.process}: a key stands in two tables of the profile")


SLS_SPEC = ProfileSpec(
    process="sls",
    stack_decks=True,
    bed={"base_powder_mm": (0, 100), "top_powder_mm": (0, 100)},
    tables={
        "exposure": {
            **_EXPOSURE,
            "laser_power_w": (1, 2000),
            "layer_mm": (0.02, 0.5),
            "hatch_mm": (0.01, 2.0),
            "hatch_speed_mm_s": (10, 50_000),
            "bed_temperature_c": (20, 400),
        },
        "power": {
            **_POWER,
            "inert_gas_w": (0, 50_000),
            "heaters_warmup_w": (0, 100_000),
            "heaters_build_w": (0, 100_000),
        },
        "phases": _PHASES,
    },
    material={
        **_MATERIAL,
        "part_density_g_cm3": (0.3, 3.0),
        "powder_bulk_density_g_cm3": (0.1, 2.0),
        "refresh_fraction": (0.0, 1.0),
        "emissivity": (0.01, 1.0),
    },
)

MLS_SPEC = ProfileSpec(
    process="mls",
    stack_decks=False,
    bed={"base_support_mm": (0, 50)},
    tables={
        "exposure": {
            **_EXPOSURE,
            "layer_mm": (0.005, 0.2),
            "volume_rate_mm3_s": (0.1, 500),
            "support_density": (0.01, 1.0),
            "support_rate_factor": (0.1, 50),
            "platform_temperature_c": (0, 600),
        },
        "power": {
            **_POWER,
            "gas_recirculation_w": (0, 50_000),
            "chiller_w": (0, 50_000),
            "platform_heater_w": (0, 50_000),
        },
        "phases": _PHASES,
        "gas": {"purge_m3": (0, 1000), "flow_m3_per_h": (0, 100)},
    },
    material={
        **_MATERIAL,
        "part_density_g_cm3": (1, 25),
        "powder_bulk_density_g_cm3": (0.3, 20),
        "powder_loss_fraction": (0, 1),
    },
    variant={
        "power_factor": (0.1, 10),
        "volume_rate_factor": (0.1, 10),
        "laser_efficiency": (0.01, 1.0),
    },
)

SPECS = {s.process: s for s in (SLS_SPEC, MLS_SPEC)}


@dataclass(frozen=True)
class PowderMaterial:
    """A powder a machine can process: densities and heat capacity, and what a job uses up.

    ``refresh_fraction`` (SLS): share of the whole powder cake replaced by fresh powder per
    job; ``powder_loss_fraction`` (MLS): share of the unmelted powder lost to sieving;
    ``emissivity`` (SLS): of the hot powder bed's surface, for its radiative loss. A key a
    process does not use is 0.
    """

    name: str
    part_density_g_cm3: float
    powder_bulk_density_g_cm3: float
    cp_j_per_kg_k: float
    melting_c: float
    latent_heat_j_per_g: float
    absorptivity: float
    refresh_fraction: float = 0.0
    powder_loss_fraction: float = 0.0
    emissivity: float = 0.0


@dataclass(frozen=True)
class PowderBedMachine:
    """A laser powder-bed machine profile (SLS or MLS), bounds checked at load.

    The tables are as in the file; ``bed`` holds the process's own ``[chamber]`` keys
    (SLS: ``base_powder_mm``, ``top_powder_mm``; MLS: ``base_support_mm``).
    """

    name: str
    process: str
    chamber: Chamber
    bed: dict[str, float]
    exposure: dict[str, float]
    power: dict[str, float]
    phases: dict[str, float]
    materials: dict[str, PowderMaterial]
    gas: dict[str, float] = field(default_factory=dict)
    variants: dict[str, dict[str, float]] = field(default_factory=dict)
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    # dotted key ("power.electronics_w", "variants.low.laser_efficiency") -> (low, high)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __getattr__(self, key: str) -> float:
        """Any number of the profile by its key, whichever table holds it."""
        if not key.startswith("_"):  # never for copy/pickle protocol names
            for table in _TABLES:
                values = self.__dict__.get(table, {})
                if key in values:
                    return values[key]
        raise AttributeError(f"{type(self).__name__} has no attribute or profile key {key!r}")

    @property
    def layer_mm(self) -> float:
        return self.exposure["layer_mm"]

    @property
    def profile_name(self) -> str:
        """The name an estimate reports: the profile file's stem, else the machine's name."""
        return self.path.stem if self.path else self.name

    def assumptions(self) -> list[str]:
        """Keys whose source says they are assumptions (reported in an estimate's provenance)."""
        return sorted(k for k, s in self.sources.items() if s.lower().startswith("assumption"))

    def with_numbers(self, numbers: dict[str, float]) -> PowderBedMachine:
        """A copy with some numbers replaced, by dotted key (``"power.electronics_w"``,
        ``"variants.high.power_factor"``): an uncertainty analysis's drawn machine. Only
        what does not change the build's geometry (exposure, power, phases, gas, variants)."""
        tables = {t: dict(getattr(self, t)) for t in _DRAWABLE}
        variants = {k: dict(v) for k, v in self.variants.items()}
        for dotted, v in numbers.items():
            head, _, key = dotted.rpartition(".")
            target = (
                variants.get(head.removeprefix("variants."))
                if head.startswith("variants.")
                else tables.get(head)
            )
            if target is None or key not in target:
                raise SettingsError(f"{self.name}: cannot set {dotted!r} (not a drawable number)")
            target[key] = float(v)
        return replace(self, variants=variants, **tables)

    def material(self, name: str) -> PowderMaterial:
        for key, m in self.materials.items():
            if key.lower() == name.lower():
                return m
        raise SettingsError(
            f"{self.name} cannot process material {name!r}; it takes: {', '.join(self.materials)}"
        )


def _checked(where: str, table: dict[str, Any], bounds: dict[str, Bounds]) -> dict[str, float]:
    return {k: check_range(where, k, v, *bounds[k]) for k, v in table.items()}


def _materials(where: str, values: dict[str, Any], spec: ProfileSpec) -> dict[str, PowderMaterial]:
    mats = {}
    for name, t in (values.get("materials") or {}).items():
        check_known_keys(f"{where} [materials.{name}]", t, set(spec.material))
        missing = sorted(set(spec.material) - set(t))
        if missing:
            raise ProfileError(f"{where} [materials.{name}]: missing key(s) {', '.join(missing)}")
        mats[name] = PowderMaterial(name, **_checked(where, t, spec.material))
    if not mats:
        raise ProfileError(f"{where}: no [materials.NAME] table")
    return mats


def load_machine(name_or_path: str, process: str) -> PowderBedMachine:
    """Load ``hardware/<process>/<name>.toml`` (or a path), checking keys and ranges."""
    spec = SPECS[process]
    path = find_profile("hardware", name_or_path)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    if v.get("process") != spec.process:
        raise ProfileError(f"{where}: process = {v.get('process')!r}, expected {spec.process!r}")
    top = {"name", "process", "chamber", "materials", *spec.tables}
    check_known_keys(where, v, top | ({"variants"} if spec.variant else set()))
    c = required_table(v, "chamber", where, set(_VOLUME) | set(spec.bed))
    tables = {t: required_table(v, t, where, set(keys)) for t, keys in spec.tables.items()}
    vol = _checked(where, {k: c[k] for k in _VOLUME}, _VOLUME)
    variants = {}
    for name, t in (v.get("variants") or {}).items():
        check_known_keys(f"{where} [variants.{name}]", t, set(spec.variant))
        variants[name] = _checked(where, t, spec.variant)
    return PowderBedMachine(
        name=str(v.get("name", path.stem)),
        process=spec.process,
        chamber=Chamber(**vol, stack_decks=spec.stack_decks),
        bed=_checked(where, {k: c[k] for k in spec.bed}, spec.bed),
        materials=_materials(where, v, spec),
        variants=variants,
        path=path,
        sources=prof.sources,
        ranges=prof.ranges,
        **{t: _checked(where, tables[t], spec.tables[t]) for t in spec.tables},
    )
