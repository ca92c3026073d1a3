"""Metal laser melting (MLS/DMLS, e.g. EOS M 290 with AlSi10Mg): time, energy and material.

Layer counts are exact and analytic: ``ceil((base support + part height) / layer)``;
30 µm layers would make a voxel grid of thousands of slices, so the part is sampled on
a coarse z grid (``dz_mm`` ≈ the xy pitch, 0.5 mm by default) and each slab stands for
``dz_mm / layer_mm`` machine layers (:mod:`slicer_energy.sintering.powderbed`).

Exposure time: solid volume / the data sheet's volume rate (EOS gives it per process,
e.g. 5.1 mm³/s for AlSi10Mg 30 µm on the M 290), plus contours at
``contour_speed_mm_s``, plus supports: the overhang volume from the voxel grid (45° rule)
and a base layer between plate and part, times a fill density, exposed
``support_rate_factor`` times faster. Every layer costs ``recoat_s``.

Power: electronics, gas recirculation, chiller and platform heater all the time, the
laser (optical / wall-plug efficiency) while exposing. The study's low/high variants
(``[variants.low|high]``) scale machine power and volume rate and set the laser efficiency.

Material: parts, supports (melted then cut off: waste), argon (purge + flow), powder
spread over the plate (reused after sieving except ``powder_loss_fraction``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProfileError, SettingsError
from ..estimate import J_PER_KWH, Estimate
from ..profiles import (
    check_known_keys,
    check_range,
    find_profile,
    load_sourced_toml,
    required_table,
)
from .packing import (
    Chamber,
    Packing,
    allocated_estimates,
    check_fits,
    fill,
    pack,
    stacked_profile,
    utilisation,
)
from .powderbed import PartLayers, extents_mm, part_layers

VARIANTS = ("nominal", "low", "high")

_TOP = {"name", "process", "chamber", "exposure", "power", "phases", "gas", "variants", "materials"}
_CHAMBER = {"x_mm", "y_mm", "z_mm", "spacing_mm", "margin_mm", "base_support_mm"}
_EXPOSURE = {
    "layer_mm",
    "volume_rate_mm3_s",
    "laser_power_w",
    "contour_speed_mm_s",
    "support_density",
    "support_rate_factor",
    "recoat_s",
    "platform_temperature_c",
    "ambient_c",
}
_POWER = {
    "electronics_w",
    "gas_recirculation_w",
    "chiller_w",
    "platform_heater_w",
    "cooldown_w",
    "laser_efficiency",
}
_PHASES = {"warmup_s", "cooldown_s"}
_GAS = {"purge_m3", "flow_m3_per_h"}
_VARIANT = {"power_factor", "volume_rate_factor", "laser_efficiency"}
_MATERIAL = {
    "part_density_g_cm3",
    "powder_bulk_density_g_cm3",
    "cp_j_per_kg_k",
    "powder_loss_fraction",
}


@dataclass(frozen=True)
class MetalPowder:
    name: str
    part_density_g_cm3: float
    powder_bulk_density_g_cm3: float
    cp_j_per_kg_k: float
    powder_loss_fraction: float


@dataclass(frozen=True)
class MlsMachine:
    name: str
    chamber: Chamber
    base_support_mm: float
    exposure: dict[str, float]
    power: dict[str, float]
    phases: dict[str, float]
    gas: dict[str, float]
    variants: dict[str, dict[str, float]]
    materials: dict[str, MetalPowder]
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def layer_mm(self) -> float:
        return self.exposure["layer_mm"]

    def material(self, name: str) -> MetalPowder:
        for key, m in self.materials.items():
            if key.lower() == name.lower():
                return m
        raise SettingsError(
            f"{self.name} cannot process material {name!r}; it takes: {', '.join(self.materials)}"
        )


_BOUNDS = {
    "layer_mm": (0.005, 0.2),
    "volume_rate_mm3_s": (0.1, 500),
    "laser_power_w": (10, 10_000),
    "contour_speed_mm_s": (10, 20_000),
    "support_density": (0.01, 1.0),
    "support_rate_factor": (0.1, 50),
    "recoat_s": (0, 300),
    "platform_temperature_c": (0, 600),
    "ambient_c": (-20, 50),
    "electronics_w": (0, 50_000),
    "gas_recirculation_w": (0, 50_000),
    "chiller_w": (0, 50_000),
    "platform_heater_w": (0, 50_000),
    "cooldown_w": (0, 50_000),
    "laser_efficiency": (0.01, 1.0),
    "warmup_s": (0, 7 * 86400),
    "cooldown_s": (0, 7 * 86400),
    "purge_m3": (0, 1000),
    "flow_m3_per_h": (0, 100),
    "power_factor": (0.1, 10),
    "volume_rate_factor": (0.1, 10),
}


def load_mls_machine(name_or_path: str) -> MlsMachine:
    """Load ``hardware/mls/<name>.toml`` (or a path), checking keys and ranges."""
    path = find_profile("hardware", name_or_path)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    if v.get("process") != "mls":
        raise ProfileError(f"{where}: process = {v.get('process')!r}, expected 'mls'")
    check_known_keys(where, v, _TOP)

    def checked(t: dict[str, Any]) -> dict[str, float]:
        return {k: check_range(where, k, val, *_BOUNDS[k]) for k, val in t.items()}

    c = required_table(v, "chamber", where, _CHAMBER)
    chamber = Chamber(
        x_mm=check_range(where, "x_mm", c["x_mm"], 10, 2000),
        y_mm=check_range(where, "y_mm", c["y_mm"], 10, 2000),
        z_mm=check_range(where, "z_mm", c["z_mm"], 10, 2000),
        spacing_mm=check_range(where, "spacing_mm", c["spacing_mm"], 0, 50),
        margin_mm=check_range(where, "margin_mm", c["margin_mm"], 0, 100),
        stack_decks=False,
    )
    variants = {}
    for name, t in (v.get("variants") or {}).items():
        check_known_keys(f"{where} [variants.{name}]", t, _VARIANT)
        variants[name] = checked(t)
    mats = {}
    for name, t in (v.get("materials") or {}).items():
        check_known_keys(f"{where} [materials.{name}]", t, _MATERIAL)
        mats[name] = MetalPowder(
            name=name,
            part_density_g_cm3=check_range(
                where, "part_density_g_cm3", t["part_density_g_cm3"], 1, 25
            ),
            powder_bulk_density_g_cm3=check_range(
                where, "powder_bulk_density_g_cm3", t["powder_bulk_density_g_cm3"], 0.3, 20
            ),
            cp_j_per_kg_k=check_range(where, "cp_j_per_kg_k", t["cp_j_per_kg_k"], 100, 3000),
            powder_loss_fraction=check_range(
                where, "powder_loss_fraction", t["powder_loss_fraction"], 0, 1
            ),
        )
    if not mats:
        raise ProfileError(f"{where}: no [materials.NAME] table")
    return MlsMachine(
        name=str(v.get("name", path.stem)),
        chamber=chamber,
        base_support_mm=check_range(where, "base_support_mm", c["base_support_mm"], 0, 50),
        exposure=checked(required_table(v, "exposure", where, _EXPOSURE)),
        power=checked(required_table(v, "power", where, _POWER)),
        phases=checked(required_table(v, "phases", where, _PHASES)),
        gas=checked(required_table(v, "gas", where, _GAS)),
        variants=variants,
        materials=mats,
        path=path,
        sources=prof.sources,
    )


@dataclass
class MlsJob:
    machine: MlsMachine
    variant: str
    material: MetalPowder
    packing: Packing
    layers: int
    time_by_phase_s: dict[str, float]
    energy_by_phase_j: dict[str, float]
    energy_by_component_j: dict[str, float]
    melt_s: float
    support_s: float
    contour_s: float
    laser_optical_j: float
    parts_mass_g: float
    support_mass_g: float
    powder_spread_g: float
    powder_lost_g: float
    argon_m3: float
    utilisation: float

    @property
    def time_s(self) -> float:
        return sum(self.time_by_phase_s.values())

    @property
    def energy_j(self) -> float:
        return sum(self.energy_by_phase_j.values())


def simulate_job(
    packing: Packing, machine: MlsMachine, material: str = "AlSi10Mg", variant: str = "nominal"
) -> MlsJob:
    """Time, energy, gas and material of the metal build ``packing``."""
    mat = machine.material(material)
    if variant not in VARIANTS:
        raise SettingsError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant != "nominal" and variant not in machine.variants:
        raise SettingsError(f"{machine.name} profile has no [variants.{variant}] table")
    var = machine.variants.get(variant, {})
    ex, pw, ph = machine.exposure, machine.power, machine.phases
    f_power = var.get("power_factor", 1.0)
    rate = ex["volume_rate_mm3_s"] * var.get("volume_rate_factor", 1.0)
    eta = var.get("laser_efficiency", pw["laser_efficiency"])
    t_layer = ex["layer_mm"]

    area, contour, dz = stacked_profile(packing)
    height = machine.base_support_mm + packing.height_mm()
    layers = math.ceil(height / t_layer - 1e-9)
    layers_per_slab = dz / t_layer

    solid_mm3 = float(area.sum()) * dz
    sup_env_mm3 = 0.0
    for p in packing.placements:
        q = packing.parts[p.part]
        # Overhang supports from the voxel grid plus the base layer under the footprint.
        base_area = float(q.area_mm2[0]) if q.n_slabs else 0.0
        sup_env_mm3 += q.support_volume_mm3 + base_area * machine.base_support_mm
    sup_mm3 = sup_env_mm3 * ex["support_density"]
    melt_s = solid_mm3 / rate
    support_s = sup_mm3 / (rate * ex["support_rate_factor"])
    contour_s = float(contour.sum()) * layers_per_slab / ex["contour_speed_mm_s"]
    recoat_s = layers * ex["recoat_s"]
    build_s = melt_s + support_s + contour_s + recoat_s

    laser_optical_j = ex["laser_power_w"] * (melt_s + support_s + contour_s)
    laser_j = laser_optical_j / eta
    base_w = {
        "electronics": pw["electronics_w"] * f_power,
        "gas_recirculation": pw["gas_recirculation_w"] * f_power,
        "chiller": pw["chiller_w"] * f_power,
        "platform_heater": pw["platform_heater_w"] * f_power,
    }
    on_s = ph["warmup_s"] + build_s
    comp = {k: w * on_s for k, w in base_w.items()}
    cool_j = pw["cooldown_w"] * f_power * ph["cooldown_s"]
    comp["electronics"] += cool_j
    comp["laser"] = laser_j
    sum_base = sum(base_w.values())
    phases_j = {
        "warmup": sum_base * ph["warmup_s"],
        "build": sum_base * build_s + laser_j,
        "cooldown": cool_j,
    }
    times = {"warmup": ph["warmup_s"], "build": build_s, "cooldown": ph["cooldown_s"]}

    parts_g = sum(packing.parts[p.part].volume_mm3 for p in packing.placements) / 1000.0
    parts_g *= mat.part_density_g_cm3
    support_g = sup_mm3 / 1000.0 * mat.part_density_g_cm3
    spread_g = (
        machine.chamber.x_mm
        * machine.chamber.y_mm
        * height
        / 1000.0
        * mat.powder_bulk_density_g_cm3
    )
    lost_g = mat.powder_loss_fraction * max(0.0, spread_g - parts_g - support_g)
    argon = machine.gas["purge_m3"] + machine.gas["flow_m3_per_h"] * build_s / 3600.0
    return MlsJob(
        machine=machine,
        variant=variant,
        material=mat,
        packing=packing,
        layers=layers,
        time_by_phase_s=times,
        energy_by_phase_j=phases_j,
        energy_by_component_j=comp,
        melt_s=melt_s,
        support_s=support_s,
        contour_s=contour_s,
        laser_optical_j=laser_optical_j,
        parts_mass_g=parts_g,
        support_mass_g=support_g,
        powder_spread_g=spread_g,
        powder_lost_g=lost_g,
        argon_m3=argon,
        utilisation=utilisation(packing),
    )


def part_estimates(job: MlsJob) -> list[Estimate]:
    """One :class:`Estimate` per distinct part (energy per copy, job figures in ``extra``)."""
    m = job.machine
    return allocated_estimates(
        process="mls",
        machine_name=m.path.stem if m.path else m.name,
        packing=job.packing,
        time_by_phase_s=job.time_by_phase_s,
        energy_by_phase_j=job.energy_by_phase_j,
        energy_by_component_j=job.energy_by_component_j,
        density_g_cm3=job.material.part_density_g_cm3,
        parts_mass_g=job.parts_mass_g,
        waste_g=job.support_mass_g + job.powder_lost_g,
        settings={
            "material": job.material.name,
            "variant": job.variant,
            "layer_mm": m.layer_mm,
            "volume_rate_mm3_s": m.exposure["volume_rate_mm3_s"],
        },
        provenance={
            "profile": str(m.path),
            "kind": "default",
            "assumptions": sorted(
                k for k, s in m.sources.items() if s.lower().startswith("assumption")
            ),
        },
        extra_job={
            "layers": job.layers,
            "variant": job.variant,
            "utilisation": job.utilisation,
            "melt_s": job.melt_s,
            "support_s": job.support_s,
            "contour_s": job.contour_s,
            "job_support_g": job.support_mass_g,
            "job_powder_spread_g": job.powder_spread_g,
            "job_powder_lost_g": job.powder_lost_g,
            "job_powder_waste_g": job.support_mass_g + job.powder_lost_g,
            "argon_m3": job.argon_m3,
            "laser_energy_kwh": job.laser_optical_j / J_PER_KWH,
        },
    )


DEFAULT_PITCH_MM = 0.5  # xy pitch and z sampling; equal so the support rule is 45°


def predict_mls(
    mesh: Any,
    machine: str = "eos-m290",
    material: str = "AlSi10Mg",
    variant: str = "nominal",
    copies: int = 1,
    fill_build: bool = False,
    pitch_mm: float = DEFAULT_PITCH_MM,
    name: str = "part",
    layers: PartLayers | None = None,
    max_memory_gb: float | None = None,
) -> tuple[Estimate, MlsJob]:
    """Energy per copy of ``mesh`` on a metal laser-melting machine.

    ``layers``: the part's profile already sampled at ``pitch_mm`` with supports (as
    :func:`~slicer_energy.sintering.powderbed.part_layers` would compute it here); a batch reuses
    one across machines, variants and copies, and ``mesh`` is not voxelised again.
    ``max_memory_gb``: the grid's memory budget (default: half the available memory).
    """
    mach = load_mls_machine(machine)
    mach.material(material)
    if variant not in VARIANTS:
        raise SettingsError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if not fill_build and (int(copies) != copies or copies < 1):
        raise SettingsError(f"copies must be a whole number >= 1, got {copies}")
    if layers is None:
        check_fits(name, extents_mm(mesh), mach.chamber)  # before the grid is sized
        layers = part_layers(
            mesh, pitch_mm, pitch_mm, name=name, with_supports=True, max_memory_gb=max_memory_gb
        )
    elif not math.isclose(layers.dz_mm, pitch_mm):
        raise SettingsError(
            f"precomputed layers of {layers.name!r} are sampled every {layers.dz_mm} mm, "
            f"expected {pitch_mm} mm"
        )
    pk = fill(layers, mach.chamber) if fill_build else pack([layers], [int(copies)], mach.chamber)
    job = simulate_job(pk, mach, material, variant)
    return part_estimates(job)[0], job
