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

STUDY_WASTE_FRACTIONS = (0.30, 0.60)  # IÖW 206/14 scenarios H3/H4


@dataclass(frozen=True)
class PowderMaterial:
    name: str
    part_density_g_cm3: float
    powder_bulk_density_g_cm3: float
    cp_j_per_kg_k: float
    refresh_fraction: float


@dataclass(frozen=True)
class SlsMachine:
    """A polymer laser-sintering machine profile (bounds checked at load)."""

    name: str
    chamber: Chamber
    base_powder_mm: float
    top_powder_mm: float
    layer_mm: float
    hatch_mm: float
    hatch_speed_mm_s: float
    contour_speed_mm_s: float
    laser_power_w: float
    recoat_s: float
    bed_temperature_c: float
    ambient_c: float
    electronics_w: float
    inert_gas_w: float
    heaters_warmup_w: float
    heaters_build_w: float
    cooldown_w: float
    laser_efficiency: float
    warmup_s: float
    cooldown_s: float
    materials: dict[str, PowderMaterial]
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def material(self, name: str) -> PowderMaterial:
        for key, m in self.materials.items():
            if key.lower() == name.lower():
                return m
        raise SettingsError(
            f"{self.name} cannot process material {name!r}; it takes: {', '.join(self.materials)}"
        )


_TOP = {"name", "process", "chamber", "exposure", "power", "phases", "materials"}
_CHAMBER = {"x_mm", "y_mm", "z_mm", "spacing_mm", "margin_mm", "base_powder_mm", "top_powder_mm"}
_EXPOSURE = {
    "layer_mm",
    "hatch_mm",
    "hatch_speed_mm_s",
    "contour_speed_mm_s",
    "laser_power_w",
    "recoat_s",
    "bed_temperature_c",
    "ambient_c",
}
_POWER = {
    "electronics_w",
    "inert_gas_w",
    "heaters_warmup_w",
    "heaters_build_w",
    "cooldown_w",
    "laser_efficiency",
}
_PHASES = {"warmup_s", "cooldown_s"}
_MATERIAL = {"part_density_g_cm3", "powder_bulk_density_g_cm3", "cp_j_per_kg_k", "refresh_fraction"}


def load_sls_machine(name_or_path: str) -> SlsMachine:
    """Load ``hardware/sls/<name>.toml`` (or a path), checking keys and ranges."""
    path = find_profile("hardware", name_or_path)
    prof = load_sourced_toml(path)
    v, where = prof.values, str(path)
    if v.get("process") != "sls":
        raise ProfileError(f"{where}: process = {v.get('process')!r}, expected 'sls'")
    check_known_keys(where, v, _TOP)
    c = required_table(v, "chamber", where, _CHAMBER)
    p = required_table(v, "exposure", where, _EXPOSURE)
    w = required_table(v, "power", where, _POWER)
    ph = required_table(v, "phases", where, _PHASES)

    def rng(t: dict, key: str, lo: float, hi: float) -> float:
        return check_range(where, key, t[key], lo, hi)

    chamber = Chamber(
        x_mm=rng(c, "x_mm", 10, 2000),
        y_mm=rng(c, "y_mm", 10, 2000),
        z_mm=rng(c, "z_mm", 10, 2000),
        spacing_mm=rng(c, "spacing_mm", 0, 50),
        margin_mm=rng(c, "margin_mm", 0, 100),
        stack_decks=True,
    )
    mats = {}
    for mname, mt in (v.get("materials") or {}).items():
        check_known_keys(f"{where} [materials.{mname}]", mt, _MATERIAL)
        mats[mname] = PowderMaterial(
            name=mname,
            part_density_g_cm3=rng(mt, "part_density_g_cm3", 0.3, 3.0),
            powder_bulk_density_g_cm3=rng(mt, "powder_bulk_density_g_cm3", 0.1, 2.0),
            cp_j_per_kg_k=rng(mt, "cp_j_per_kg_k", 500, 4000),
            refresh_fraction=rng(mt, "refresh_fraction", 0.0, 1.0),
        )
    if not mats:
        raise ProfileError(f"{where}: no [materials.NAME] table")
    return SlsMachine(
        name=str(v.get("name", path.stem)),
        chamber=chamber,
        base_powder_mm=rng(c, "base_powder_mm", 0, 100),
        top_powder_mm=rng(c, "top_powder_mm", 0, 100),
        layer_mm=rng(p, "layer_mm", 0.02, 0.5),
        hatch_mm=rng(p, "hatch_mm", 0.01, 2.0),
        hatch_speed_mm_s=rng(p, "hatch_speed_mm_s", 10, 50_000),
        contour_speed_mm_s=rng(p, "contour_speed_mm_s", 10, 50_000),
        laser_power_w=rng(p, "laser_power_w", 1, 2000),
        recoat_s=rng(p, "recoat_s", 0, 300),
        bed_temperature_c=rng(p, "bed_temperature_c", 20, 400),
        ambient_c=rng(p, "ambient_c", -20, 50),
        electronics_w=rng(w, "electronics_w", 0, 50_000),
        inert_gas_w=rng(w, "inert_gas_w", 0, 50_000),
        heaters_warmup_w=rng(w, "heaters_warmup_w", 0, 100_000),
        heaters_build_w=rng(w, "heaters_build_w", 0, 100_000),
        cooldown_w=rng(w, "cooldown_w", 0, 50_000),
        laser_efficiency=rng(w, "laser_efficiency", 0.01, 1.0),
        warmup_s=rng(ph, "warmup_s", 0, 7 * 86400),
        cooldown_s=rng(ph, "cooldown_s", 0, 7 * 86400),
        materials=mats,
        path=path,
        sources=prof.sources,
    )


@dataclass
class SlsJob:
    """Figures of one whole build job (before allocation to parts)."""

    machine: SlsMachine
    material: PowderMaterial
    packing: Packing
    layers: int
    bed_height_mm: float
    time_by_phase_s: dict[str, float]
    energy_by_phase_j: dict[str, float]
    energy_by_component_j: dict[str, float]
    scan_s: float
    contour_s: float
    recoat_total_s: float
    laser_optical_j: float
    scanned_volume_mm3: float
    heater_energy_j: float
    sensible_heat_j: float
    parts_mass_g: float
    powder_cake_g: float
    fresh_powder_g: float
    powder_waste_g: float
    utilisation: float

    @property
    def time_s(self) -> float:
        return sum(self.time_by_phase_s.values())

    @property
    def energy_j(self) -> float:
        return sum(self.energy_by_phase_j.values())

    @property
    def laser_energy_per_volume_j_mm3(self) -> float:
        """Optical laser energy per sintered volume (compare: ≈ 0.2 J/mm³, Franco et al.)."""
        return self.laser_optical_j / self.scanned_volume_mm3


def simulate_job(packing: Packing, machine: SlsMachine, material: str = "PA12") -> SlsJob:
    """Time, energy and powder of the build ``packing`` on ``machine``."""
    mat = machine.material(material)
    m = machine
    area, contour, dz = stacked_profile(packing)
    layers_per_slab = dz / m.layer_mm
    bed_height = m.base_powder_mm + packing.height_mm() + m.top_powder_mm
    layers = math.ceil(bed_height / m.layer_mm - 1e-9)

    scan_s = float(area.sum()) * layers_per_slab / (m.hatch_mm * m.hatch_speed_mm_s)
    contour_s = float(contour.sum()) * layers_per_slab / m.contour_speed_mm_s
    recoat_total_s = layers * m.recoat_s
    build_s = scan_s + contour_s + recoat_total_s

    laser_optical_j = m.laser_power_w * (scan_s + contour_s)
    laser_elec_j = laser_optical_j / m.laser_efficiency
    heaters_j = m.heaters_warmup_w * m.warmup_s + m.heaters_build_w * build_s
    electronics_j = m.electronics_w * (m.warmup_s + build_s)
    gas_j = m.inert_gas_w * (m.warmup_s + build_s)
    cool_j = m.cooldown_w * m.cooldown_s

    time_by_phase = {"warmup": m.warmup_s, "build": build_s, "cooldown": m.cooldown_s}
    energy_by_phase = {
        "warmup": (m.heaters_warmup_w + m.electronics_w + m.inert_gas_w) * m.warmup_s,
        "build": (m.heaters_build_w + m.electronics_w + m.inert_gas_w) * build_s + laser_elec_j,
        "cooldown": cool_j,
    }
    energy_by_component = {
        "heaters": heaters_j,
        "electronics": electronics_j + cool_j,
        "inert_gas": gas_j,
        "laser": laser_elec_j,
    }

    # Powder: the whole chamber footprint is spread for every layer.
    cake_cm3 = m.chamber.x_mm * m.chamber.y_mm * bed_height / 1000.0
    powder_cake_g = cake_cm3 * mat.powder_bulk_density_g_cm3
    scanned_mm3 = float(area.sum()) * dz
    parts_mass_g = sum(packing.parts[p.part].volume_mm3 for p in packing.placements) / 1000.0
    parts_mass_g *= mat.part_density_g_cm3
    fresh_g = max(mat.refresh_fraction * powder_cake_g, parts_mass_g)
    sensible_j = (powder_cake_g / 1000.0) * mat.cp_j_per_kg_k * (m.bed_temperature_c - m.ambient_c)
    return SlsJob(
        machine=m,
        material=mat,
        packing=packing,
        layers=layers,
        bed_height_mm=bed_height,
        time_by_phase_s=time_by_phase,
        energy_by_phase_j=energy_by_phase,
        energy_by_component_j=energy_by_component,
        scan_s=scan_s,
        contour_s=contour_s,
        recoat_total_s=recoat_total_s,
        laser_optical_j=laser_optical_j,
        scanned_volume_mm3=scanned_mm3,
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
    ests = allocated_estimates(
        process=process,
        machine_name=job.machine.path.stem if job.machine.path else job.machine.name,
        packing=job.packing,
        time_by_phase_s=job.time_by_phase_s,
        energy_by_phase_j=job.energy_by_phase_j,
        energy_by_component_j=job.energy_by_component_j,
        density_g_cm3=job.material.part_density_g_cm3,
        parts_mass_g=job.parts_mass_g,
        waste_g=job.powder_waste_g,
        settings={
            "material": job.material.name,
            "layer_mm": job.machine.layer_mm,
            "hatch_mm": job.machine.hatch_mm,
            "hatch_speed_mm_s": job.machine.hatch_speed_mm_s,
            "laser_power_w": job.machine.laser_power_w,
        },
        provenance={
            "profile": str(job.machine.path),
            "kind": "default",
            "assumptions": sorted(
                k for k, s in job.machine.sources.items() if s.lower().startswith("assumption")
            ),
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
    if not fill_build and (int(copies) != copies or copies < 1):
        raise SettingsError(f"copies must be a whole number >= 1, got {copies}")
    if layers is None:
        check_fits(name, extents_mm(mesh), mach.chamber)  # before the grid is sized
        layers = part_layers(
            mesh, pitch_xy_mm, mach.layer_mm, name=name, max_memory_gb=max_memory_gb
        )
    elif not math.isclose(layers.dz_mm, mach.layer_mm):
        raise SettingsError(
            f"precomputed layers of {layers.name!r} are {layers.dz_mm} mm thick but "
            f"{mach.name} builds {mach.layer_mm} mm layers"
        )
    if fill_build:
        pk = fill(layers, mach.chamber)
    else:
        pk = pack([layers], [int(copies)], mach.chamber)
    job = simulate_job(pk, mach, material)
    return part_estimates(job)[0], job
