"""The slab pass gives the same measures wherever the slabs are cut and however many run at
once: each slab reads its halo of neighbouring layers and writes only its own layers."""

from __future__ import annotations

import dataclasses

import manifold3d as mf
import numpy as np
import pytest

from slicer_energy.errors import SettingsError
from slicer_energy.fdm.regions import THREADS_ENV, halo_layers, measure_layers, slab_threads
from slicer_energy.fdm.repeats import kept_layers
from slicer_energy.fdm.settings import load_preset
from slicer_energy.geometry import prepare_mesh
from slicer_energy.mesh import Mesh
from slicer_energy.voxelize import voxelize


def _plate(thickness_mm: float) -> mf.Manifold:
    """A 30 x 20 mm plate with a through hole."""
    hole = mf.Manifold.cylinder(5, 4, 4, 48).translate([8.0, 10.0, -1.0])
    return mf.Manifold.cube([30.0, 20.0, thickness_mm]) - hole


def _mesh(part: mf.Manifold) -> Mesh:
    m = part.to_mesh()
    return Mesh(np.asarray(m.vert_properties)[:, :3], np.asarray(m.tri_verts))


def _part(tower_mm: float = 9.0) -> Mesh:
    """A plate with a through hole, a tower and a bridge (top skins, holes, overhangs)."""
    tower = mf.Manifold.cube([6.0, 6.0, tower_mm]).translate([20.0, 7.0, 3.0])
    bridge = mf.Manifold.cube([16.0, 4.0, 2.0]).translate([10.0, 8.0, tower_mm + 3.0])
    return _mesh(_plate(3.0) + tower + bridge)


def _grid(tower_mm: float = 9.0, pitch: float = 0.2, mesh: Mesh | None = None):
    s = dataclasses.replace(load_preset("0.20mm-quality"), supports=True)
    part = prepare_mesh(mesh if mesh is not None else _part(tower_mm))
    return voxelize(part, pitch, s.layer_height_mm), s


# 0.5 mm cells are wider than the vertical shells' opening (0.43 mm): the staircase blur runs.
PITCHES = (0.2, 0.5)


def _assert_same(one, other) -> None:
    for f in dataclasses.fields(one):
        a, b = getattr(one, f.name), getattr(other, f.name)
        if f.name in ("slab_layers", "slabs"):
            continue
        if isinstance(a, dict):
            assert a.keys() == b.keys(), f.name
            for k in a:
                np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), f.name)
        else:
            np.testing.assert_array_equal(a, b, f.name)


@pytest.mark.parametrize("pitch", PITCHES)
def test_measures_do_not_depend_on_slab_cuts_or_threads(pitch):
    grid, s = _grid(pitch=pitch)
    one = measure_layers(grid, s, threads=1)
    assert one.slabs == 1
    for threads, budget in ((1, 0.05), (3, 512.0), (4, 0.05)):
        other = measure_layers(grid, s, memory_budget_mb=budget, threads=threads)
        assert other.slabs > 1
        _assert_same(one, other)


def test_a_part_of_few_layers_is_cut_into_one_slab_per_thread():
    """A 2 mm plate (10 layers, fewer than four halos) still runs one slab per thread, with
    the measures of one slab."""
    grid, s = _grid(mesh=_mesh(_plate(2.0)))
    assert grid.shape[0] == 10 < 4 * halo_layers(s)
    one = measure_layers(grid, s, threads=1)
    for threads in (2, 8):
        other = measure_layers(grid, s, threads=threads)
        assert other.slabs == min(threads, 5)
        _assert_same(one, other)


@pytest.mark.parametrize("pitch", PITCHES)
def test_repeated_layers_measured_once_give_every_layer_its_measures(pitch):
    """A 20 mm tower repeats its section for ~100 layers between the plate's top skin and
    the bridge's: measuring 2 r + 2 of them gives every layer what measuring all gives,
    with the slab cuts and threads of either."""
    grid, s = _grid(tower_mm=20.0, pitch=pitch)
    r = halo_layers(s)
    keep = kept_layers(grid.occupancy, r)
    assert keep is not None and keep.size < grid.shape[0] - 60
    # no run as long as 2 r + 2 = 122 layers of the 125: nothing to drop
    assert 2 * 60 + 2 < grid.shape[0] and kept_layers(grid.occupancy, 60) is None
    every = measure_layers(grid, s, threads=1, repeats=False)
    for threads, budget in ((1, 512.0), (3, 0.05)):
        _assert_same(every, measure_layers(grid, s, memory_budget_mb=budget, threads=threads))


def test_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert slab_threads(np) == 3
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(SettingsError, match=THREADS_ENV):
        slab_threads(np)
    monkeypatch.delenv(THREADS_ENV)
    assert 1 <= slab_threads(np) <= 8
