"""Polymer SLS job model: layer physics, powder bed, capacity utilisation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from slicer_energy.errors import ProfileError, SettingsError
from slicer_energy.geometry import load_mesh, prepare_mesh
from slicer_energy.sintering.packing import fill, pack
from slicer_energy.sintering.powderbed import contour_length_per_layer_mm, part_layers
from slicer_energy.sintering.sls import load_sls_machine, part_estimates, predict_sls, simulate_job
from slicer_energy.voxelize import voxelize

from conftest import need_shared

ENVELOPE_KWH_PER_KG = (16.9, 1347.0)  # Baumers et al. 2011, 61-4849 MJ/kg


@pytest.fixture(scope="module")
def p390():
    return load_sls_machine("eosint-p390")


@pytest.fixture(scope="module")
def case_layers(p390):
    mesh = load_mesh(need_shared("corpus", "stl", "iphone6_case_thing3532190.stl"))
    return part_layers(mesh, 0.4, p390.layer_mm, name="phone_case")


def _box(x, y, z):
    return prepare_mesh(trimesh.creation.box((x, y, z)))


def test_contour_estimator_against_exact_perimeters():
    # Disc of radius 20 mm: exact perimeter 2*pi*r. Axis-aligned square 30 mm: 120 mm.
    disc = trimesh.creation.cylinder(radius=20.0, height=1.2, sections=256)
    disc.apply_translation(-disc.bounds[0])
    g = voxelize(disc, 0.2, 0.12, xp="numpy")
    per = contour_length_per_layer_mm(g)
    assert per[3] == pytest.approx(2 * math.pi * 20.0, rel=0.02)
    sq = trimesh.creation.box((30.0, 30.0, 1.2))
    sq.apply_translation(-sq.bounds[0])
    per = contour_length_per_layer_mm(voxelize(sq, 0.2, 0.12, xp="numpy"))
    assert per[3] == pytest.approx(120.0, rel=0.06)


def test_box_scan_time_matches_hand_calculation(p390):
    # 40 x 30 x 12 mm box: 100 layers of 1200 mm² hatched and 140 mm traced.
    box = part_layers(_box(40.0, 30.0, 12.0), 0.5, p390.layer_mm)
    job = simulate_job(pack([box], [1], p390.chamber), p390)
    n = round(12.0 / p390.layer_mm)
    hatch_s = n * 1200.0 / (p390.hatch_mm * p390.hatch_speed_mm_s)
    assert job.scan_s == pytest.approx(hatch_s, rel=0.01)
    contour_s = n * 140.0 / p390.contour_speed_mm_s
    assert job.contour_s == pytest.approx(contour_s, rel=0.06)
    layers = math.ceil((p390.base_powder_mm + 12.0 + p390.top_powder_mm) / p390.layer_mm - 1e-9)
    assert job.layers == layers
    assert job.recoat_total_s == pytest.approx(layers * p390.recoat_s)


def test_laser_energy_density_is_of_published_order_and_a_small_share(p390, case_layers):
    # Franco et al.: about 0.2 J/mm³ of laser energy per sintered PA12 volume.
    job = simulate_job(pack([case_layers], [1], p390.chamber), p390)
    assert 0.2 / 3 < job.laser_energy_per_volume_j_mm3 < 0.2 * 3
    # Heating and idle time dominate: the laser's wall-plug energy is a small share.
    assert job.energy_by_component_j["laser"] < 0.05 * job.energy_j


@pytest.mark.parametrize("copies", [1, 20, "full"])
def test_heating_covers_sensible_heat_of_powder_cake(p390, case_layers, copies):
    pk = (
        fill(case_layers, p390.chamber)
        if copies == "full"
        else pack([case_layers], [copies], p390.chamber)
    )
    job = simulate_job(pk, p390)
    mat = p390.material("PA12")
    # Independent lower bound: cake mass x c_p x (bed - room) with the sourced values.
    cake_kg = 340 * 340 * job.bed_height_mm * 1e-6 * mat.powder_bulk_density_g_cm3
    lower = cake_kg * mat.cp_j_per_kg_k * (p390.bed_temperature_c - p390.ambient_c)
    assert job.sensible_heat_j == pytest.approx(lower, rel=1e-9)
    assert job.heater_energy_j >= lower


def test_kwh_per_kg_inside_envelope_and_falls_with_utilisation(p390, case_layers):
    full = fill(case_layers, p390.chamber)
    counts = [1, 2, 5, 10, 40, 120, full.copies]
    per_part, utils = [], []
    for n in counts:
        pk = full if n == full.copies else pack([case_layers], [n], p390.chamber)
        est = part_estimates(simulate_job(pk, p390))[0]
        lo, hi = ENVELOPE_KWH_PER_KG
        assert lo <= est.extra["kwh_per_kg"] <= hi, (n, est.extra["kwh_per_kg"])
        per_part.append(est.energy_j)
        utils.append(est.extra["utilisation"])
    assert np.all(np.diff(utils) > 0)
    assert np.all(np.diff(per_part) < 0)  # monotonic decrease
    # Steep at low utilisation, flat when full: the first doubling saves far more than the last.
    drop_first = per_part[0] - per_part[1]
    drop_last = per_part[-2] - per_part[-1]
    assert drop_first > 20 * drop_last
    ratio = per_part[0] / per_part[-1]
    print(f"phone case on P 390: energy per part alone / full build = {ratio:.1f}")
    assert ratio > 10


def test_allocated_part_energies_add_up_to_the_job(p390, case_layers):
    job = simulate_job(pack([case_layers], [7], p390.chamber), p390)
    est = part_estimates(job)[0]
    assert est.energy_j * 7 == pytest.approx(job.energy_j, rel=1e-9)
    assert sum(est.energy_by_phase_j.values()) == pytest.approx(est.energy_j, rel=1e-9)
    assert sum(est.energy_by_component_j.values()) == pytest.approx(est.energy_j, rel=1e-9)


def test_powder_mass_balance(p390, case_layers):
    one = simulate_job(pack([case_layers], [1], p390.chamber), p390)
    full = simulate_job(fill(case_layers, p390.chamber), p390)
    for job in (one, full):
        assert job.fresh_powder_g == pytest.approx(job.parts_mass_g + job.powder_waste_g)
        assert job.parts_mass_g == pytest.approx(
            case_layers.volume_mm3 / 1000 * 0.93 * job.packing.copies
        )
    share = [j.powder_waste_g / j.fresh_powder_g for j in (one, full)]
    assert share[1] < share[0]  # a fuller build wastes a smaller share of the powder
    est = part_estimates(full)[0]
    w30, w60 = est.extra["study_waste_g"]["30%"], est.extra["study_waste_g"]["60%"]
    assert w30 == pytest.approx(est.material_g * 0.3 / 0.7)
    assert w60 == pytest.approx(est.material_g * 1.5)


def test_bad_input_is_reported_clearly(p390):
    with pytest.raises(SettingsError, match="does not fit the build volume"):
        predict_sls(_box(400.0, 20.0, 20.0))
    with pytest.raises(SettingsError, match="copies"):
        predict_sls(_box(20.0, 20.0, 20.0), copies=0)
    with pytest.raises(SettingsError, match="cannot process material 'AlSi10Mg'"):
        predict_sls(_box(20.0, 20.0, 20.0), material="AlSi10Mg")
    with pytest.raises(SettingsError, match="packing density 15%.*max_packing_density"):
        predict_sls(_box(100.0, 100.0, 100.0), copies=12)  # 12 litres, 16.7 % of 71.7
    with pytest.raises(SettingsError, match="do not fit one build"):
        predict_sls(_box(300.0, 300.0, 0.5), copies=200)  # 12.6 %, but 113 decks at most


def test_profile_errors_name_file_and_key(tmp_path):
    src = load_sls_machine("eosint-p390").path.read_text()
    bad = tmp_path / "typo.toml"
    bad.write_text(src.replace("recoat_s =", "recoat_secs ="))
    with pytest.raises(ProfileError, match=r"typo\.toml.*recoat_secs"):
        load_sls_machine(str(bad))
    bad.write_text(src.replace("layer_mm = 0.12", "layer_mm = 5.0"))
    with pytest.raises(ProfileError, match=r"layer_mm = 5.0 is outside"):
        load_sls_machine(str(bad))


def test_contour_estimator_same_on_every_backend(xp):
    disc = trimesh.creation.cylinder(radius=12.0, height=0.6, sections=128)
    disc.apply_translation(-disc.bounds[0])
    per = contour_length_per_layer_mm(voxelize(disc, 0.2, 0.12, xp=xp))
    assert per[2] == pytest.approx(2 * math.pi * 12.0, rel=0.03)


def test_mixed_build_allocates_whole_job(p390, case_layers):
    box = part_layers(_box(50.0, 40.0, 30.0), 0.4, p390.layer_mm, name="box")
    job = simulate_job(pack([case_layers, box], [6, 3], p390.chamber), p390)
    ests = {e.extra["part"]: e for e in part_estimates(job)}
    total = 6 * ests["phone_case"].energy_j + 3 * ests["box"].energy_j
    assert total == pytest.approx(job.energy_j, rel=1e-9)
    assert ests["box"].energy_j > ests["phone_case"].energy_j  # taller and more volume
    assert 0 < job.utilisation < 1


def test_wrong_kind_of_profile_is_named():
    with pytest.raises(ProfileError, match="process = 'mls', expected 'sls'"):
        load_sls_machine("eos-m290")
