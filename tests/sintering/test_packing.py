"""Build packing heuristic, energy allocation and capacity utilisation."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_energy.errors import SettingsError
from slicer_energy.sintering.packing import (
    Chamber,
    allocate,
    fill,
    max_copies,
    pack,
    stacked_profile,
    utilisation,
)
from slicer_energy.sintering.powderbed import PartLayers


def _part(name, fx, fy, h, dz=0.5, area=None):
    n = int(round(h / dz))
    a = np.full(n, fx * fy if area is None else area)
    return PartLayers(name, a, np.full(n, 2 * (fx + fy)), dz, (fx, fy), h, float(a.sum() * dz))


CH = Chamber(
    x_mm=100, y_mm=80, z_mm=50, spacing_mm=5, margin_mm=5, max_packing_density=1.0, stack_decks=True
)


def test_fill_count_matches_grid_arithmetic():
    # usable 90 x 70 x 50; 20 x 10 x 10 part with 5 mm gaps:
    # per row floor((90+5)/25)=3, rows floor((70+5)/15)=5, decks floor((50+5)/15)=3.
    p = _part("p", 20, 10, 10)
    assert max_copies(p, CH) == 3 * 5 * 3
    flat = Chamber(100, 80, 50, 5, 5, 1.0, stack_decks=False)
    assert max_copies(p, flat) == 15  # metal: one deck on the plate


def test_part_is_turned_when_only_that_fits():
    p = _part("long-y", 10, 85, 5)  # 85 > 70 usable in y, fits along x
    pk = pack([p], [1], CH)
    assert pk.placements[0].turned


def test_placements_do_not_overlap_and_stay_inside():
    parts = [_part("a", 20, 10, 10), _part("b", 30, 25, 20)]
    pk = pack(parts, [10, 4], CH)
    boxes = []
    for pl in pk.placements:
        q = parts[pl.part]
        dx, dy = q.footprint_mm[::-1] if pl.turned else q.footprint_mm
        b = (pl.x_mm, pl.y_mm, pl.z_mm, pl.x_mm + dx, pl.y_mm + dy, pl.z_mm + q.height_mm)
        assert b[0] >= 5 and b[1] >= 5 and b[3] <= 95 and b[4] <= 75 and b[5] <= 50
        boxes.append(b)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = all(max(a[k], b[k]) < min(a[k + 3], b[k + 3]) for k in range(3))
            assert not overlap


def test_stacked_profile_sums_part_profiles():
    parts = [_part("a", 20, 10, 10), _part("b", 30, 25, 20)]
    pk = pack(parts, [3, 2], CH)
    area, contour, dz = stacked_profile(pk)
    assert area.sum() * dz == pytest.approx(3 * 2000 + 2 * 15000)


def test_allocation_rule():
    parts = [_part("small", 10, 10, 10), _part("tall", 10, 10, 30)]
    pk = pack(parts, [1, 1], CH)
    shares = allocate(pk, laser_energy_j=100.0, other_energy_j=400.0)
    assert sum(shares) == pytest.approx(500.0)
    by_name = {parts[p.part].name: s for p, s in zip(pk.placements, shares, strict=True)}
    # laser by volume (1:3), the rest by height (1:3): 25 + 100 and 75 + 300.
    assert by_name["small"] == pytest.approx(125.0)
    assert by_name["tall"] == pytest.approx(375.0)


def test_utilisation_is_monotonic_and_one_when_full():
    p = _part("p", 20, 10, 10)
    full = fill(p, CH)
    us = [utilisation(pack([p], [n], CH)) for n in range(1, full.copies + 1)]
    assert np.all(np.diff(us) > 0)
    assert us[-1] == pytest.approx(1.0)
    mix = pack([p, _part("q", 30, 25, 20)], [5, 2], CH)
    assert 0 < utilisation(mix) < 1


def test_packing_errors():
    with pytest.raises(SettingsError, match="does not fit the build volume"):
        pack([_part("big", 95, 10, 10)], [1], CH)  # 95 > 90 usable either way
    with pytest.raises(SettingsError, match="whole number >= 1"):
        pack([_part("p", 10, 10, 10)], [0], CH)
    with pytest.raises(SettingsError, match="only 45 placed"):
        pack([_part("p", 20, 10, 10)], [46], CH)
