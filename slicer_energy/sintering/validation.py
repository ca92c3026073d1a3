"""The sintering validation table of docs/sintering.md, and the physical lower bounds it checks.

Each row: a case, its source, the published figure or the physical bound, ours, the error
and what kind of check it is. ``python -m slicer_energy.sintering.validation`` prints the
Markdown table; tests/sintering/test_sls_docs_table.py recomputes it and compares with
docs/sintering.md.

No per-machine energy figure (Baumers 2011/2013 P 390 / M 270 tables, Kellens, EOS power
data sheets) could be read in any stored text, so no row is a ±15 % energy validation of
a machine. What can be checked without one is physics the model must not undercut:

* :func:`laser_bound_j`: the laser's optical energy must at least heat the sintered or
  melted volume from the bed (SLS) or plate (MLS) temperature to its melting point and
  melt it, divided by the powder's absorptivity;
* :func:`heater_bound_j` (SLS): the heaters must at least bring the whole powder cake from
  room to bed temperature and replace what the open bed surface radiates to the room over
  the build.

Material constants are the profile's ``[materials.NAME]`` values (each with its source;
where recalled, the end of the range that keeps the bound low), so a wrong laser power,
scan speed, volume rate, heater power or absorptivity in a profile shows up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trimesh

from ..estimate import J_PER_KWH
from ..geometry import load_mesh, prepare_mesh
from .job import MEASURED_KWH_PER_KG, PowderBedJob
from .mls import load_mls_machine
from .mls import simulate_job as simulate_mls
from .packing import pack
from .powderbed import part_layers
from .sls import SlsJob, predict_sls

STEFAN_BOLTZMANN_W_M2_K4 = 5.670374419e-8  # CODATA 2018
KELVIN = 273.15


def melt_enthalpy_j(job: PowderBedJob) -> float:
    """Heat to take the job's scanned volume from bed/plate temperature through melting."""
    m, mat = job.machine, job.material
    start_c = m.bed_temperature_c if m.process == "sls" else m.platform_temperature_c
    kg = job.scanned_volume_mm3 / 1e6 * mat.part_density_g_cm3
    return kg * (
        mat.cp_j_per_kg_k * max(0.0, mat.melting_c - start_c) + mat.latent_heat_j_per_g * 1e3
    )


def laser_bound_j(job: PowderBedJob) -> float:
    """Least optical laser energy of the job: the melt enthalpy over the absorptivity."""
    return melt_enthalpy_j(job) / job.material.absorptivity


def bed_radiation_w(job: SlsJob) -> float:
    """Net radiation of the open bed surface (whole chamber footprint) to the room."""
    m, mat = job.machine, job.material
    t_bed, t_room = m.bed_temperature_c + KELVIN, m.ambient_c + KELVIN
    area_m2 = m.chamber.x_mm * m.chamber.y_mm / 1e6
    return mat.emissivity * STEFAN_BOLTZMANN_W_M2_K4 * (t_bed**4 - t_room**4) * area_m2


def heater_bound_j(job: SlsJob) -> float:
    """Least heater energy of an SLS job: the cake's sensible heat plus the bed's radiation
    over the build (losses during warm-up and through the walls left out: a lower bound)."""
    return job.sensible_heat_j + bed_radiation_w(job) * job.time_by_phase_s["build"]


@dataclass(frozen=True)
class Row:
    case: str
    source: str
    published: str
    ours: float
    unit: str
    error: str
    check: str
    passed: bool


def _corpus_phone_case(shared: Path) -> object:
    return load_mesh(shared / "corpus" / "stl" / "iphone6_case_thing3532190.stl")


def _franco_rows(job: SlsJob) -> list[Row]:
    m = job.machine
    hatch_only = m.laser_power_w / (m.hatch_mm * m.hatch_speed_mm_s * m.layer_mm)
    lev = job.laser_energy_per_volume_j_mm3
    franco = "Franco, Lanzetta, Romoli (J. Cleaner Prod. 2010): ≈ 0.2 J/mm³"
    return [
        Row(
            "PA12 laser energy per sintered volume, hatch only (P 390 profile)",
            franco,
            "0.2",
            hatch_only,
            "J/mm³",
            f"{(hatch_only / 0.2 - 1) * 100:+.0f} %",
            "order of magnitude (×/÷ 3); laser settings are assumptions",
            0.2 / 3 <= hatch_only <= 0.2 * 3,
        ),
        Row(
            "same, hatch + contours, phone case alone",
            "Franco et al. 2010",
            "0.2",
            lev,
            "J/mm³",
            f"{(lev / 0.2 - 1) * 100:+.0f} %",
            "order of magnitude (×/÷ 3)",
            0.2 / 3 <= lev <= 0.2 * 3,
        ),
    ]


def _laser_row(case: str, job: PowderBedJob, props: str) -> Row:
    bound = laser_bound_j(job) / job.scanned_volume_mm3
    ours = job.laser_optical_j / job.scanned_volume_mm3
    return Row(
        case,
        f"physics: ρ (c_p ΔT + L) / absorptivity, {props}",
        f"≥ {bound:.3g}",
        ours,
        "J/mm³",
        f"×{ours / bound:.2f}",
        "lower bound",
        ours >= bound,
    )


def _heater_row(job: SlsJob) -> Row:
    bound = heater_bound_j(job) / J_PER_KWH
    ours = job.heater_energy_j / J_PER_KWH
    mat = job.material
    return Row(
        f"P 390 heater energy, phone case full build ({job.packing.copies} parts)",
        f"physics: cake c_p ΔT + ε σ (T_bed⁴ − T_room⁴) × bed area × build time; "
        f"c_p {mat.cp_j_per_kg_k:g} J/(kg K), bulk {mat.powder_bulk_density_g_cm3:g} g/cm³, "
        f"ε {mat.emissivity:g}",
        f"≥ {bound:.3g}",
        ours,
        "kWh",
        f"×{ours / bound:.2f}",
        "lower bound",
        ours >= bound,
    )


def _envelope_row(label: str, k: float, copies: int) -> Row:
    lo, hi = MEASURED_KWH_PER_KG
    return Row(
        f"P 390 kWh per kg of part, {label} ({copies} parts)",
        "Baumers et al. 2011 (SFF): 61–4849 MJ/kg = 16.9–1347 kWh/kg, all AM platforms",
        f"{lo:.3g}–{hi:.4g}",
        k,
        "kWh/kg",
        "inside" if lo <= k <= hi else "outside",
        "envelope",
        lo <= k <= hi,
    )


def rows(shared: Path) -> list[Row]:
    case = _corpus_phone_case(shared)
    single, job1 = predict_sls(case, copies=1, name="phone_case")
    full, jobf = predict_sls(case, fill_build=True, name="phone_case")
    pa = job1.material
    out = _franco_rows(job1)
    out.append(
        _laser_row(
            "P 390 laser energy per sintered volume, phone case alone",
            job1,
            f"PA12 {pa.melting_c:g} °C, L {pa.latent_heat_j_per_g:g} J/g, "
            f"absorptivity {pa.absorptivity:g}, from a {job1.machine.bed_temperature_c:g} °C bed",
        )
    )
    out.append(_heater_row(jobf))
    m = load_mls_machine("eos-m290")
    cube = prepare_mesh(trimesh.creation.box((20.0, 20.0, 20.0)))
    layers = part_layers(cube, 0.5, 0.5, name="cube", with_supports=True)
    mjob = simulate_mls(pack([layers], [1], m.chamber), m)
    al = mjob.material
    out.append(
        _laser_row(
            "EOS M 290 laser energy per melted volume, 20 mm cube",
            mjob,
            f"AlSi10Mg {al.melting_c:g} °C, L {al.latent_heat_j_per_g:g} J/g, "
            f"absorptivity {al.absorptivity:g}, from a {m.platform_temperature_c:g} °C plate",
        )
    )
    for label, est in (("phone case alone", single), ("phone case, full build", full)):
        out.append(_envelope_row(label, est.extra["kwh_per_kg"], est.extra["copies"]))
    return out


def markdown(rs: list[Row]) -> str:
    lines = [
        "| case | source | published | ours | error | check |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rs:
        lines.append(
            f"| {r.case} | {r.source} | {r.published} {r.unit} | {r.ours:.3g} {r.unit} "
            f"| {r.error} | {r.check} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import sys

    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared")
    print(markdown(rows(shared)))
