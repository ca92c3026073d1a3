"""Metal laser melting: analytic layer counts, supports from overhangs, variants, material."""

from __future__ import annotations

import math

import pytest
import trimesh

from slicer_energy.errors import SettingsError
from slicer_energy.geometry import load_mesh, prepare_mesh
from slicer_energy.sintering.mls import load_mls_machine, part_estimates, predict_mls, simulate_job
from slicer_energy.sintering.packing import pack
from slicer_energy.sintering.powderbed import part_layers

from conftest import need_shared


@pytest.fixture(scope="module")
def m290():
    return load_mls_machine("eos-m290")


def _mesh(*boxes):
    """Union of axis-aligned boxes given as (x0, y0, z0, x1, y1, z1)."""
    parts = []
    for x0, y0, z0, x1, y1, z1 in boxes:
        b = trimesh.creation.box((x1 - x0, y1 - y0, z1 - z0))
        b.apply_translation(((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2))
        parts.append(b)
    return prepare_mesh(trimesh.boolean.union(parts) if len(parts) > 1 else parts[0])


def test_layers_and_melt_time_are_analytic(m290):
    cube = part_layers(_mesh((0, 0, 0, 20, 20, 20)), 0.5, 0.5, with_supports=True)
    assert cube.support_volume_mm3 == 0.0  # a cube needs no overhang supports
    job = simulate_job(pack([cube], [1], m290.chamber), m290)
    assert job.layers == math.ceil((20.0 + m290.base_support_mm) / 0.03 - 1e-9)
    assert job.melt_s == pytest.approx(8000.0 / 5.1, rel=0.01)  # data-sheet volume rate
    # Base support only: footprint x base height x fill density.
    expect_sup = 400.0 * m290.base_support_mm * m290.exposure["support_density"]
    assert job.support_mass_g == pytest.approx(expect_sup / 1000 * 2.67, rel=0.01)


def test_overhang_support_volume_matches_geometry():
    # A 30 x 30 x 4 mm table top on a 6 x 6 mm leg, top underside at z = 10 mm.
    # Needs support: the top's underside outside the leg (900 - 36 mm²) down to the plate,
    # less the 45° self-supporting fringe one cell wide around the leg.
    m = _mesh((12, 12, 0, 18, 18, 10), (0, 0, 10, 30, 30, 14))
    layers = part_layers(m, 0.5, 0.5, with_supports=True)
    fringe = 7.0 * 7.0 - 36.0  # one 0.5 mm ring around the 6 mm leg
    expect = (900.0 - 36.0 - fringe) * 10.0
    assert layers.support_volume_mm3 == pytest.approx(expect, rel=0.03)


def test_variants_order_and_envelope(m290):
    mesh = load_mesh(need_shared("corpus", "stl", "engine_bracket_metastruct.stl"))
    layers = part_layers(mesh, 0.5, 0.5, name="bracket", with_supports=True)
    pk = pack([layers], [1], m290.chamber)
    res = {
        v: part_estimates(simulate_job(pk, m290, variant=v))[0] for v in ("low", "nominal", "high")
    }
    assert res["low"].energy_j < res["nominal"].energy_j < res["high"].energy_j
    for est in res.values():
        assert 16.9 <= est.extra["kwh_per_kg"] <= 1347.0
        assert est.extra["argon_m3"] > m290.gas["purge_m3"]
    # More copies share the plate: energy per part falls.
    two = part_estimates(simulate_job(pack([layers], [2], m290.chamber), m290))[0]
    assert two.energy_j < res["nominal"].energy_j


def test_mls_bad_input(m290):
    cube = _mesh((0, 0, 0, 20, 20, 20))
    with pytest.raises(SettingsError, match="cannot process material 'PA12'"):
        predict_mls(cube, material="PA12")
    with pytest.raises(SettingsError, match="unknown variant"):
        predict_mls(cube, variant="medium")
    with pytest.raises(SettingsError, match="does not fit the build volume"):
        predict_mls(_mesh((0, 0, 0, 20, 20, 400)))
    with pytest.raises(SettingsError, match="do not fit one build"):
        predict_mls(_mesh((0, 0, 0, 100, 100, 10)), copies=5)


def test_m270_is_slower_than_m290():
    cube = _mesh((0, 0, 0, 20, 20, 20))
    e290, j290 = predict_mls(cube, machine="eos-m290")
    e270, j270 = predict_mls(cube, machine="eos-m270")
    assert j270.melt_s > j290.melt_s
