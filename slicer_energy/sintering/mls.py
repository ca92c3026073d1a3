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

from dataclasses import dataclass
from typing import Any

from ..errors import SettingsError
from ..estimate import J_PER_KWH, Estimate
from . import job as steps
from .job import PowderBedJob
from .machine import PowderBedMachine, load_machine
from .packing import Packing, utilisation
from .powderbed import PartLayers

VARIANTS = ("nominal", "low", "high")


def load_mls_machine(name_or_path: str) -> PowderBedMachine:
    """Load ``hardware/mls/<name>.toml`` (or a path), checking keys and ranges."""
    return load_machine(name_or_path, "mls")


def variant_factors(machine: PowderBedMachine, variant: str) -> dict[str, float]:
    """The ``[variants.<variant>]`` table of ``machine`` ({} for nominal)."""
    if variant not in VARIANTS:
        raise SettingsError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant != "nominal" and variant not in machine.variants:
        raise SettingsError(f"{machine.name} profile has no [variants.{variant}] table")
    return machine.variants.get(variant, {})


@dataclass
class MlsJob(PowderBedJob):
    variant: str
    melt_s: float
    support_s: float
    contour_s: float
    support_mass_g: float
    powder_spread_g: float
    powder_lost_g: float
    argon_m3: float


def _support_envelope_mm3(packing: Packing, base_support_mm: float) -> float:
    """Overhang supports from the voxel grid plus the base layer under each footprint."""
    sup_env_mm3 = 0.0
    for p in packing.placements:
        q = packing.parts[p.part]
        base_area = float(q.area_mm2[0]) if q.n_slabs else 0.0
        sup_env_mm3 += q.support_volume_mm3 + base_area * base_support_mm
    return sup_env_mm3


def simulate_job(
    packing: Packing,
    machine: PowderBedMachine,
    material: str = "AlSi10Mg",
    variant: str = "nominal",
) -> MlsJob:
    """Time, energy, gas and material of the metal build ``packing``."""
    mat = machine.material(material)
    var = variant_factors(machine, variant)
    ex, pw = machine.exposure, machine.power
    f_power = var.get("power_factor", 1.0)
    rate = ex["volume_rate_mm3_s"] * var.get("volume_rate_factor", 1.0)
    eta = var.get("laser_efficiency", pw["laser_efficiency"])

    bed = steps.stack_layers(packing, ex["layer_mm"], machine.base_support_mm)
    solid_mm3 = float(bed.area_mm2.sum()) * bed.dz_mm
    sup_mm3 = _support_envelope_mm3(packing, machine.base_support_mm) * ex["support_density"]
    melt_s = solid_mm3 / rate
    support_s = sup_mm3 / (rate * ex["support_rate_factor"])
    contour_s = float(bed.contour_mm.sum()) * bed.layers_per_slab / ex["contour_speed_mm_s"]
    build_s = melt_s + support_s + contour_s + bed.layers * ex["recoat_s"]

    laser_optical_j = ex["laser_power_w"] * (melt_s + support_s + contour_s)
    laser_j = laser_optical_j / eta
    base_w = {
        "electronics": pw["electronics_w"] * f_power,
        "gas_recirculation": pw["gas_recirculation_w"] * f_power,
        "chiller": pw["chiller_w"] * f_power,
        "platform_heater": pw["platform_heater_w"] * f_power,
    }
    sum_base = sum(base_w.values())
    times, phases_j = steps.timeline(
        machine.phases,
        build_s,
        warmup_w=sum_base,
        build_w=sum_base,
        cooldown_w=pw["cooldown_w"] * f_power,
        laser_j=laser_j,
    )
    comp = steps.component_energy(base_w, machine.warmup_s + build_s, phases_j["cooldown"], laser_j)

    parts_g = steps.parts_mass_g(packing, mat)
    support_g = sup_mm3 / 1000.0 * mat.part_density_g_cm3
    spread_g = steps.spread_powder_g(machine.chamber, bed.height_mm, mat)
    lost_g = mat.powder_loss_fraction * max(0.0, spread_g - parts_g - support_g)
    argon = machine.gas["purge_m3"] + machine.gas["flow_m3_per_h"] * build_s / 3600.0
    return MlsJob(
        machine=machine,
        variant=variant,
        material=mat,
        packing=packing,
        layers=bed.layers,
        time_by_phase_s=times,
        energy_by_phase_j=phases_j,
        energy_by_component_j=comp,
        melt_s=melt_s,
        support_s=support_s,
        contour_s=contour_s,
        laser_optical_j=laser_optical_j,
        scanned_volume_mm3=solid_mm3 + sup_mm3,
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
    return steps.part_estimates(
        job,
        process="mls",
        waste_g=job.support_mass_g + job.powder_lost_g,
        settings={
            "material": job.material.name,
            "variant": job.variant,
            "layer_mm": m.layer_mm,
            "volume_rate_mm3_s": m.exposure["volume_rate_mm3_s"],
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
    variant_factors(mach, variant)
    pk = steps.plan_build(
        mesh,
        mach.chamber,
        name=name,
        copies=copies,
        fill_build=fill_build,
        layers=layers,
        grid=(pitch_mm, pitch_mm, True),
        max_memory_gb=max_memory_gb,
        grid_error=lambda got: (
            f"precomputed layers of {got.name!r} are sampled every {got.dz_mm} mm, "
            f"expected {pitch_mm} mm"
        ),
    )
    job = simulate_job(pk, mach, material, variant)
    return part_estimates(job)[0], job
