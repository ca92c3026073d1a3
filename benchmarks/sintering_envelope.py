"""docs/sintering.md table "Full builds beside the measured range": kWh/kg of every sample
and corpus part.

For each of the study's sample parts (``samples.SAMPLES``) and each STL in
``../shared/corpus/stl`` (skipped without it): a full SLS build on the EOSINT P 390 (PA12)
and a full MLS build on the EOS M 290 (AlSi10Mg), with packing density, kWh/kg and the
measured range of Baumers et al. 2011 (16.9-1347 kWh/kg). Where a part falls outside,
one line says why from the job's physics: how the time-dependent load is spread over the
build's mass, and the physical floor (laser and heater lower bounds) per kg.

    python benchmarks/sintering_envelope.py [../shared]
"""

from __future__ import annotations

import sys
from pathlib import Path

from slicer_energy import samples
from slicer_energy.estimate import J_PER_KWH, Estimate
from slicer_energy.geometry import load_mesh, prepare_mesh
from slicer_energy.sintering.job import MEASURED_KWH_PER_KG, PowderBedJob
from slicer_energy.sintering.mls import predict_mls
from slicer_energy.sintering.sls import SlsJob, predict_sls
from slicer_energy.sintering.validation import heater_bound_j, laser_bound_j


def parts(shared: Path) -> list[tuple[str, object]]:
    out = [(n, prepare_mesh(getattr(samples, n)())) for n in samples.SAMPLES]
    stl = shared / "corpus" / "stl"
    if stl.is_dir():
        out += [(p.stem, load_mesh(p)) for p in sorted(stl.glob("*.stl"))]
    return out


def floor_kwh_per_kg(job: PowderBedJob) -> float:
    """Physical least energy per kg of part: laser bound (wall plug) plus, for SLS, heaters."""
    j = laser_bound_j(job) / job.machine.laser_efficiency
    if isinstance(job, SlsJob):
        j += heater_bound_j(job)
    return j / J_PER_KWH / (job.parts_mass_g / 1000.0)


def why(est: Estimate, job: PowderBedJob) -> str:
    """One line: why a full build's kWh/kg is outside the measured range, from its physics."""
    k = est.extra["kwh_per_kg"]
    lo, hi = MEASURED_KWH_PER_KG
    if lo <= k <= hi:
        return ""
    laser = job.energy_by_component_j["laser"]
    base = (job.energy_j - laser) / J_PER_KWH / (job.parts_mass_g / 1000.0)
    return (
        f"{'below' if k < lo else 'above'}: {job.packing.copies} parts, "
        f"{job.parts_mass_g / 1000:.1f} kg share the time-dependent load (warm-up, heaters, "
        f"base load, cool-down: {base:.1f} kWh/kg); the laser adds "
        f"{laser / J_PER_KWH / (job.parts_mass_g / 1000):.2f} kWh/kg; physical floor "
        f"{floor_kwh_per_kg(job):.1f} kWh/kg"
    )


def table(shared: Path) -> str:
    lines = [
        "| part | process | copies | packing density | kWh/kg | measured 16.9–1347 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for name, mesh in parts(shared):
        for proc, run in (("SLS P 390", predict_sls), ("MLS M 290", predict_mls)):
            est, job = run(mesh, fill_build=True, name=name)
            k = est.extra["kwh_per_kg"]
            reason = why(est, job)
            lines.append(
                f"| {name} | {proc} | {job.packing.copies} | {est.extra['packing_density']:.1%} "
                f"| {k:.1f} | {reason.split(':')[0] if reason else 'inside'} |"
            )
            if reason:
                notes.append(f"- {name}, {proc}: {reason}")
    return "\n".join(lines + [""] + notes)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared")))
