"""The steps every powder-bed job shares, SLS or MLS; each process adds only its physics.

A job: the part is sampled once (:func:`plan_build` checks the copies and that it fits,
voxelises it or takes a precomputed profile, and places it in the chamber); the build's
profile is stacked and counted in machine layers (:func:`stack_layers`); the job runs
warm-up → build → cool-down with the machine's base load on from warm-up to the end of the
build, the laser only while it exposes, and the cabinet alone during cool-down
(:func:`timeline`, :func:`component_energy`); powder is spread over the whole chamber
footprint (:func:`spread_powder_g`); and the job's energy is shared among its parts
(:func:`part_estimates`: laser by scanned volume, the rest by height share, as
:func:`~slicer_energy.sintering.packing.allocate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SettingsError
from ..estimate import J_PER_KWH, Estimate
from .machine import PowderBedMachine, PowderMaterial
from .packing import Chamber, Packing, allocate, check_fits, fill, pack, stacked_profile
from .powderbed import PartLayers, extents_mm, part_layers

# The measured range of AM electricity per kg of part, every record reports it beside its
# kWh/kg: Baumers et al. 2011 (SFF Symp.), 61-4849 MJ/kg over several AM platforms, single
# parts to full builds (../shared/reference/am-energy-measured.md, Table 3).
MEASURED_KWH_PER_KG = (61 / 3.6, 4849 / 3.6)


@dataclass
class PowderBedJob:
    """Figures of one whole build job (before allocation to parts); each process adds its own."""

    machine: PowderBedMachine
    material: PowderMaterial
    packing: Packing
    layers: int
    time_by_phase_s: dict[str, float]
    energy_by_phase_j: dict[str, float]
    energy_by_component_j: dict[str, float]
    laser_optical_j: float
    scanned_volume_mm3: float  # what the laser sinters or melts (supports included)
    parts_mass_g: float
    utilisation: float

    @property
    def time_s(self) -> float:
        return sum(self.time_by_phase_s.values())

    @property
    def energy_j(self) -> float:
        return sum(self.energy_by_phase_j.values())


def plan_build(
    mesh: Any,
    chamber: Chamber,
    *,
    name: str,
    copies: int,
    fill_build: bool,
    layers: PartLayers | None,
    grid: tuple[float, float, bool],
    max_memory_gb: float | None,
    grid_error: Callable[[PartLayers], str],
) -> Packing:
    """The build of ``copies`` (or a full build) of one part.

    ``grid``: (xy pitch, z sampling, with supports) the process samples at; ``layers``, when
    given, must be sampled at that z (else ``grid_error(layers)`` is raised) and ``mesh`` is
    not voxelised again.
    """
    if not fill_build and (int(copies) != copies or copies < 1):
        raise SettingsError(f"copies must be a whole number >= 1, got {copies}")
    pitch_xy_mm, dz_mm, with_supports = grid
    if layers is None:
        check_fits(name, extents_mm(mesh), chamber)  # before the grid is sized
        layers = part_layers(
            mesh,
            pitch_xy_mm,
            dz_mm,
            name=name,
            with_supports=with_supports,
            max_memory_gb=max_memory_gb,
        )
    elif not math.isclose(layers.dz_mm, dz_mm):
        raise SettingsError(grid_error(layers))
    return fill(layers, chamber) if fill_build else pack([layers], [int(copies)], chamber)


@dataclass(frozen=True)
class StackedLayers:
    """The build's scan profile per z slab, and its height counted in machine layers."""

    area_mm2: np.ndarray
    contour_mm: np.ndarray
    dz_mm: float
    height_mm: float  # powder or support below + parts + powder above
    layers: int
    layers_per_slab: float


def stack_layers(
    packing: Packing, layer_mm: float, below_mm: float, above_mm: float = 0.0
) -> StackedLayers:
    """Stack the parts' profiles; the layer count is exact, ``ceil(height / layer)``."""
    area, contour, dz = stacked_profile(packing)
    height = below_mm + packing.height_mm() + above_mm
    return StackedLayers(
        area_mm2=area,
        contour_mm=contour,
        dz_mm=dz,
        height_mm=height,
        layers=math.ceil(height / layer_mm - 1e-9),
        layers_per_slab=dz / layer_mm,
    )


def timeline(
    phases: dict[str, float],
    build_s: float,
    *,
    warmup_w: float,
    build_w: float,
    cooldown_w: float,
    laser_j: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """Time and energy by phase: warm-up, build (base load + laser), cool-down."""
    times = {"warmup": phases["warmup_s"], "build": build_s, "cooldown": phases["cooldown_s"]}
    energy = {
        "warmup": warmup_w * phases["warmup_s"],
        "build": build_w * build_s + laser_j,
        "cooldown": cooldown_w * phases["cooldown_s"],
    }
    return times, energy


def component_energy(
    on_w: dict[str, float], on_s: float, cooldown_j: float, laser_j: float
) -> dict[str, float]:
    """Energy by component: ``on_w`` from warm-up to the end of the build, the electronics
    also through cool-down, the laser while it exposes."""
    comp = {k: w * on_s for k, w in on_w.items()}
    comp["electronics"] += cooldown_j
    comp["laser"] = laser_j
    return comp


def parts_mass_g(packing: Packing, material: PowderMaterial) -> float:
    """Mass of all parts placed in the build (exact mesh volumes)."""
    g = sum(packing.parts[p.part].volume_mm3 for p in packing.placements) / 1000.0
    return g * material.part_density_g_cm3


def spread_powder_g(chamber: Chamber, height_mm: float, material: PowderMaterial) -> float:
    """Powder spread over the whole chamber footprint up to ``height_mm``."""
    return chamber.x_mm * chamber.y_mm * height_mm / 1000.0 * material.powder_bulk_density_g_cm3


def part_estimates(
    job: PowderBedJob,
    *,
    process: str,
    waste_g: float,
    settings: dict[str, Any],
    extra_job: dict[str, Any],
) -> list[Estimate]:
    """One :class:`Estimate` per distinct part of the build (energy per copy).

    Laser energy is shared by scanned volume, everything else by height share
    (:func:`~slicer_energy.sintering.packing.allocate`); phases and components alike.
    ``waste_g`` (the job's) is shared by mass; ``extra_job`` goes into every estimate.
    """
    packing = job.packing
    job_j = job.energy_j
    laser_j = job.energy_by_component_j.get("laser", 0.0)
    shares = allocate(packing, laser_j, job_j - laser_j)
    job_time = job.time_s
    sv = sum(packing.parts[q.part].scanned_volume_mm3 for q in packing.placements)
    sh = sum(packing.parts[q.part].height_mm for q in packing.placements)
    provenance = {
        "profile": str(job.machine.path),
        "kind": "default",
        "assumptions": job.machine.assumptions(),
    }
    out = []
    seen: set[int] = set()
    for p, e_j in zip(packing.placements, shares, strict=True):
        if p.part in seen:
            continue
        seen.add(p.part)
        part = packing.parts[p.part]
        mass_g = part.volume_mm3 / 1000.0 * job.material.part_density_g_cm3
        frac = e_j / job_j if job_j else 0.0
        f_laser = part.scanned_volume_mm3 / sv if sv else 0.0
        f_rest = part.height_mm / sh
        comp = {
            k: v * (f_laser if k == "laser" else f_rest)
            for k, v in job.energy_by_component_j.items()
        }
        phase = {k: v * f_rest for k, v in job.energy_by_phase_j.items()}
        phase["build"] = phase.get("build", 0.0) + laser_j * (f_laser - f_rest)
        part_waste = waste_g * (mass_g / job.parts_mass_g) if job.parts_mass_g else 0.0
        extra = {
            **extra_job,
            "job_energy_kwh": job_j / J_PER_KWH,
            "copies": packing.copies,
            "copies_of_this_part": sum(1 for q in packing.placements if q.part == p.part),
            "share_of_job": frac,
            "powder_waste_g": part_waste,
            "time_per_part_s": job_time * frac,
            "kwh_per_kg": (e_j / J_PER_KWH) / (mass_g / 1000.0) if mass_g else math.inf,
            "kwh_per_kg_measured_range": MEASURED_KWH_PER_KG,
            "packing_density": packing.packing_density(),
            "part": part.name,
            "support_volume_mm3": part.support_volume_mm3,
        }
        out.append(
            Estimate(
                process=process,
                machine=job.machine.profile_name,
                time_s=job_time,
                energy_j=e_j,
                time_by_phase_s=dict(job.time_by_phase_s),
                energy_by_phase_j=phase,
                energy_by_component_j=comp,
                material_g=mass_g,
                waste_g=part_waste,
                settings=dict(settings),
                provenance=dict(provenance),
                extra=extra,
            )
        )
    return out
