"""Polymer laser sintering (SLS, e.g. EOSINT P 390 with PA12): time, energy and powder of a job.

Layer model (DESIGN.md "SLS / MLS"): per layer the laser hatches the scanned area at
``hatch_mm`` spacing and ``hatch_speed_mm_s`` and traces the outline at
``contour_speed_mm_s``; every layer of the bed (also the powder-only base and cover
layers) costs ``recoat_s``. The job runs warm-up → build → cool-down; the build draws
the heaters, electronics and inert gas all the time and the laser (optical power /
wall-plug efficiency) only while it scans.

Material balance: the parts' mass; the powder cake (whole chamber footprint × bed
height × bulk density); fresh powder per job in steady state = refresh fraction × cake
(at least the parts' mass); waste = fresh − parts. The study's fixed 30 % / 60 % waste
("powder not ending in the part") is reported next to it for comparison.

All functions are pure: geometry and profile in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..estimate import J_PER_KWH, Estimate
from . import job as steps
from .job import PowderBedJob
from .machine import PowderBedMachine, load_machine
from .packing import Packing, utilisation
from .powderbed import PartLayers

STUDY_WASTE_FRACTIONS = (0.30, 0.60)  # IÖW 206/14 scenarios H3/H4


def load_sls_machine(name_or_path: str) -> PowderBedMachine:
    """Load ``hardware/sls/<name>.toml`` (or a path), checking keys and ranges."""
    return load_machine(name_or_path, "sls")


@dataclass
class SlsJob(PowderBedJob):
    """Figures of one whole build job (before allocation to parts)."""

    bed_height_mm: float
    scan_s: float
    contour_s: float
    recoat_total_s: float
    heater_energy_j: float
    sensible_heat_j: float
    powder_cake_g: float
    fresh_powder_g: float
    powder_waste_g: float

    @property
    def laser_energy_per_volume_j_mm3(self) -> float:
        """Optical laser energy per sintered volume (compare: ≈ 0.2 J/mm³, Franco et al.)."""
        return self.laser_optical_j / self.scanned_volume_mm3


def simulate_job(packing: Packing, machine: PowderBedMachine, material: str = "PA12") -> SlsJob:
    """Time, energy and powder of the build ``packing`` on ``machine``."""
    mat = machine.material(material)
    m = machine
    bed = steps.stack_layers(packing, m.layer_mm, m.base_powder_mm, m.top_powder_mm)
    scanned_area = float(bed.area_mm2.sum())
    scan_s = scanned_area * bed.layers_per_slab / (m.hatch_mm * m.hatch_speed_mm_s)
    contour_s = float(bed.contour_mm.sum()) * bed.layers_per_slab / m.contour_speed_mm_s
    recoat_total_s = bed.layers * m.recoat_s
    build_s = scan_s + contour_s + recoat_total_s

    laser_optical_j = m.laser_power_w * (scan_s + contour_s)
    laser_elec_j = laser_optical_j / m.laser_efficiency
    heaters_j = m.heaters_warmup_w * m.warmup_s + m.heaters_build_w * build_s
    time_by_phase, energy_by_phase = steps.timeline(
        m.phases,
        build_s,
        warmup_w=m.heaters_warmup_w + m.electronics_w + m.inert_gas_w,
        build_w=m.heaters_build_w + m.electronics_w + m.inert_gas_w,
        cooldown_w=m.cooldown_w,
        laser_j=laser_elec_j,
    )
    energy_by_component = {
        "heaters": heaters_j,
        **steps.component_energy(
            {"electronics": m.electronics_w, "inert_gas": m.inert_gas_w},
            m.warmup_s + build_s,
            energy_by_phase["cooldown"],
            laser_elec_j,
        ),
    }

    # Powder: the whole chamber footprint is spread for every layer.
    powder_cake_g = steps.spread_powder_g(m.chamber, bed.height_mm, mat)
    parts_mass_g = steps.parts_mass_g(packing, mat)
    fresh_g = max(mat.refresh_fraction * powder_cake_g, parts_mass_g)
    sensible_j = (powder_cake_g / 1000.0) * mat.cp_j_per_kg_k * (m.bed_temperature_c - m.ambient_c)
    return SlsJob(
        machine=m,
        material=mat,
        packing=packing,
        layers=bed.layers,
        bed_height_mm=bed.height_mm,
        time_by_phase_s=time_by_phase,
        energy_by_phase_j=energy_by_phase,
        energy_by_component_j=energy_by_component,
        scan_s=scan_s,
        contour_s=contour_s,
        recoat_total_s=recoat_total_s,
        laser_optical_j=laser_optical_j,
        scanned_volume_mm3=scanned_area * bed.dz_mm,
        heater_energy_j=heaters_j,
        sensible_heat_j=sensible_j,
        parts_mass_g=parts_mass_g,
        powder_cake_g=powder_cake_g,
        fresh_powder_g=fresh_g,
        powder_waste_g=fresh_g - parts_mass_g,
        utilisation=utilisation(packing),
    )


def part_estimates(job: SlsJob, process: str = "sls") -> list[Estimate]:
    """One :class:`Estimate` per distinct part of the build (energy per copy)."""
    m = job.machine
    ests = steps.part_estimates(
        job,
        process=process,
        waste_g=job.powder_waste_g,
        settings={
            "material": job.material.name,
            "layer_mm": m.layer_mm,
            "hatch_mm": m.hatch_mm,
            "hatch_speed_mm_s": m.hatch_speed_mm_s,
            "laser_power_w": m.laser_power_w,
        },
        extra_job={
            "layers": job.layers,
            "bed_height_mm": job.bed_height_mm,
            "utilisation": job.utilisation,
            "powder_cake_g": job.powder_cake_g,
            "fresh_powder_g": job.fresh_powder_g,
            "job_powder_waste_g": job.powder_waste_g,
            "job_parts_g": job.parts_mass_g,
            "laser_energy_per_volume_j_mm3": job.laser_energy_per_volume_j_mm3,
            "heater_energy_kwh": job.heater_energy_j / J_PER_KWH,
            "sensible_heat_cake_kwh": job.sensible_heat_j / J_PER_KWH,
        },
    )
    for est in ests:
        # The study's fixed waste shares: powder bought = part / (1 - w).
        est.extra["study_waste_g"] = {
            f"{round(w * 100)}%": est.material_g * w / (1 - w) for w in STUDY_WASTE_FRACTIONS
        }
    return ests


DEFAULT_PITCH_XY_MM = 0.4  # areas/contours; finer changes energy by < 1 % on the corpus parts


def predict_sls(
    mesh: Any,
    machine: str = "eosint-p390",
    material: str = "PA12",
    copies: int = 1,
    fill_build: bool = False,
    pitch_xy_mm: float = DEFAULT_PITCH_XY_MM,
    name: str = "part",
    layers: PartLayers | None = None,
    max_memory_gb: float | None = None,
) -> tuple[Estimate, SlsJob]:
    """Energy per copy of ``mesh`` on an SLS machine, alone or with copies / a full build.

    ``layers``: the part's scan profile
    (:func:`~slicer_energy.sintering.powderbed.part_layers`) for this machine's layer grid (a
    batch reuses one across copies, materials and machines with the same layer thickness);
    ``mesh`` is then not voxelised again. ``max_memory_gb``:
    the grid's memory budget (default: half the available memory).
    """
    mach = load_sls_machine(machine)
    mach.material(material)  # fail early on a material the machine cannot process
    pk = steps.plan_build(
        mesh,
        mach.chamber,
        name=name,
        copies=copies,
        fill_build=fill_build,
        layers=layers,
        grid=(pitch_xy_mm, mach.layer_mm, False),
        max_memory_gb=max_memory_gb,
        grid_error=lambda got: (
            f"precomputed layers of {got.name!r} are {got.dz_mm} mm thick but "
            f"{mach.name} builds {mach.layer_mm} mm layers"
        ),
    )
    job = simulate_job(pk, mach, material)
    return part_estimates(job)[0], job
