"""The sintering validation table in the README, recomputed from the models.

Each row: a case, its source, the published figure, ours, the error and what kind of
check it is. ``python -m slicer_energy.sintering.validation`` prints the Markdown table;
tests/sintering/test_sls_readme_table.py recomputes it and compares with README.md.

No per-machine energy figure (Baumers 2011/2013 P 390 / M 270 tables, Kellens, EOS power
data sheets) could be read in any stored text, so no row is a ±15 % energy validation of
a machine; the rows are what *could* be checked (see the README section for the list).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trimesh

from ..geometry import load_mesh, prepare_mesh
from .mls import load_mls_machine
from .mls import simulate_job as simulate_mls
from .packing import pack
from .powderbed import part_layers
from .sls import predict_sls


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


def rows(shared: Path) -> list[Row]:
    case = _corpus_phone_case(shared)
    single, job1 = predict_sls(case, copies=1, name="phone_case")
    full, jobf = predict_sls(case, fill_build=True, name="phone_case")
    lev = job1.laser_energy_per_volume_j_mm3
    hatch_only = job1.machine.laser_power_w / (
        job1.machine.hatch_mm * job1.machine.hatch_speed_mm_s * job1.machine.layer_mm
    )
    out = [
        Row(
            "PA12 laser energy per sintered volume, hatch only (P 390 profile)",
            "Franco, Lanzetta, Romoli (J. Cleaner Prod. 2010): ≈ 0.2 J/mm³",
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
    for label, est in (("phone case alone", single), ("phone case, full build", full)):
        k = est.extra["kwh_per_kg"]
        out.append(
            Row(
                f"P 390 kWh per kg of part, {label} ({est.extra['copies']} parts)",
                "Baumers et al. 2011 (SFF): 61–4849 MJ/kg = 16.9–1347 kWh/kg, all AM platforms",
                "16.9–1347",
                k,
                "kWh/kg",
                "inside" if 16.9 <= k <= 1347 else "outside",
                "envelope",
                16.9 <= k <= 1347,
            )
        )
    # EOS M 290 volume rate: a 20 mm cube alone; exposure rate including contours.
    m = load_mls_machine("eos-m290")
    cube = prepare_mesh(trimesh.creation.box((20.0, 20.0, 20.0)))
    layers = part_layers(cube, 0.5, 0.5, name="cube", with_supports=True)
    job = simulate_mls(pack([layers], [1], m.chamber), m)
    rate = layers.volume_mm3 / (job.melt_s + job.contour_s)
    out.append(
        Row(
            "EOS M 290 AlSi10Mg 30 µm volume rate, 20 mm cube (solid + contours)",
            "EOS process data sheet PDS AlSi10Mg M 290 30 µm: 5.1 mm³/s",
            "5.1",
            rate,
            "mm³/s",
            f"{(rate / 5.1 - 1) * 100:+.0f} %",
            "±15 %; the data sheet rate is a model input, contours are ours",
            abs(rate / 5.1 - 1) <= 0.15,
        )
    )
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
