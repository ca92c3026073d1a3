"""Physical lower bounds on laser and heater energy: the models clear them, broken inputs do not.

The bounds (sintering/validation.py) use only material constants and the job's geometry:
a 10x weaker laser, a wrong absorptivity, or heaters a tenth as strong must fail them.
"""

from __future__ import annotations

import dataclasses

import pytest
import trimesh

from slicer_energy.geometry import prepare_mesh
from slicer_energy.sintering.mls import load_mls_machine
from slicer_energy.sintering.mls import simulate_job as simulate_mls
from slicer_energy.sintering.packing import fill, pack
from slicer_energy.sintering.powderbed import part_layers
from slicer_energy.sintering.sls import load_sls_machine
from slicer_energy.sintering.sls import simulate_job as simulate_sls
from slicer_energy.sintering.validation import (
    STEFAN_BOLTZMANN_W_M2_K4,
    heater_bound_j,
    laser_bound_j,
    melt_enthalpy_j,
)


def _cube(mm: float, pitch: float, dz: float, supports: bool = False):
    mesh = prepare_mesh(trimesh.creation.box((mm, mm, mm)))
    return part_layers(mesh, pitch, dz, name="cube", with_supports=supports)


def _scaled(machine, table: str, **factors: float):
    values = dict(getattr(machine, table))
    values.update({k: values[k] * f for k, f in factors.items()})
    return dataclasses.replace(machine, **{table: values})


def _with_material(machine, **changes: float):
    mats = {k: dataclasses.replace(m, **changes) for k, m in machine.materials.items()}
    return dataclasses.replace(machine, materials=mats)


@pytest.fixture(scope="module")
def p390():
    return load_sls_machine("eosint-p390")


@pytest.fixture(scope="module")
def m290():
    return load_mls_machine("eos-m290")


def test_melt_enthalpy_by_hand(p390):
    # 20 mm cube of PA12: 8 cm³ x 0.93 g/cm³ = 7.44 g; 4 K to 176 °C at 1.7 J/(g K), 95 J/g.
    job = simulate_sls(pack([_cube(20, 0.5, p390.layer_mm)], [1], p390.chamber), p390)
    grams = job.scanned_volume_mm3 / 1000 * 0.93
    assert job.scanned_volume_mm3 == pytest.approx(8000, rel=0.01)
    assert melt_enthalpy_j(job) == pytest.approx(grams * (1.7 * 4 + 95), rel=1e-9)
    assert laser_bound_j(job) == pytest.approx(melt_enthalpy_j(job) / 0.95)


def test_sls_laser_bound_holds_and_catches_a_weak_laser(p390):
    pk = pack([_cube(20, 0.5, p390.layer_mm)], [4], p390.chamber)
    job = simulate_sls(pk, p390)
    assert job.laser_optical_j >= laser_bound_j(job)
    weak = simulate_sls(pk, _scaled(p390, "exposure", laser_power_w=0.1))
    assert weak.laser_optical_j < laser_bound_j(weak)
    # An absorptivity 4x too low makes the same (correct) laser look too weak.
    dull = simulate_sls(pk, _with_material(p390, absorptivity=0.95 / 4))
    assert dull.laser_optical_j < laser_bound_j(dull)


def test_mls_laser_bound_holds_and_catches_broken_inputs(m290):
    pk = pack([_cube(20, 0.5, 0.5, supports=True)], [1], m290.chamber)
    job = simulate_mls(pk, m290)
    assert job.laser_optical_j >= laser_bound_j(job)
    # Metal melting needs far more than the bound (heat conducts into the part below), so
    # only a gross error fails it: a laser 30x too weak, or absorptivity 0.02.
    weak = simulate_mls(pk, _scaled(m290, "exposure", laser_power_w=1 / 30))
    assert weak.laser_optical_j < laser_bound_j(weak)
    dull = simulate_mls(pk, _with_material(m290, absorptivity=0.02))
    assert dull.laser_optical_j < laser_bound_j(dull)


def test_heater_bound_by_hand_and_catches_weak_heaters(p390):
    layers = _cube(20, 0.5, p390.layer_mm)
    job = simulate_sls(fill(layers, p390.chamber), p390)
    # Bed 0.34 x 0.34 m at 172 °C radiating to a 20 °C room with emissivity 0.9.
    rad_w = 0.9 * STEFAN_BOLTZMANN_W_M2_K4 * (445.15**4 - 293.15**4) * 0.34 * 0.34
    cake_kg = 0.34 * 0.34 * job.bed_height_mm / 1000 * 505
    sensible = cake_kg * 1700 * (172 - 20)
    assert heater_bound_j(job) == pytest.approx(sensible + rad_w * job.time_by_phase_s["build"])
    assert job.heater_energy_j >= heater_bound_j(job)
    weak = simulate_sls(
        fill(layers, p390.chamber),
        _scaled(p390, "power", heaters_warmup_w=0.1, heaters_build_w=0.1),
    )
    assert weak.heater_energy_j < heater_bound_j(weak)
