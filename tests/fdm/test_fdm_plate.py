"""``predict PART --copies N`` for FDM (issue 17 item 3): a plate arranged and printed as
PrusaSlicer's ``--duplicate N``, its record, and the one-line error of a plate too big."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slicer_energy.cli import main
from slicer_energy.fdm import prusaslicer
from slicer_energy.fdm.plate import arrange
from slicer_energy.geometry import load_mesh
from slicer_energy.predict import predict_part

from conftest import SHARED, check_record, need_shared

CUBE = ("corpus", "stl", "calibration_cube_nmgrl.stl")


@pytest.fixture(scope="module")
def cube() -> str:
    return str(need_shared(*CUBE))


def test_sixteen_copies_sit_where_prusaslicer_puts_them():
    # Copy centres of 16 calibration cubes (20 mm) in PrusaSlicer 2.5's G-code of
    # `--duplicate 16` on the MK3S bed (250 x 210): a 4 x 4 grid, 26 mm pitch.
    plate = arrange((20.0, 20.0), 16, (250.0, 210.0))
    xs, ys = np.unique(plate.centres_mm[:, 0]), np.unique(plate.centres_mm[:, 1])
    np.testing.assert_allclose(xs, [86, 112, 138, 164], atol=0.01)
    np.testing.assert_allclose(ys, [66, 92, 118, 144], atol=0.01)
    hops = np.hypot(*np.diff(plate.centres_mm, axis=0).T)
    np.testing.assert_allclose(hops, 26.0)  # each copy's next is a neighbour


def test_plate_record_validates_and_shares_the_plate(cube, capsys):
    assert main(["predict", cube, "--copies", "4", "--json"]) == 0
    rec = check_record(json.loads(capsys.readouterr().out))
    plate = rec["fdm"]["plate"]
    assert plate["copies"] == 4 and plate["grid"] == [2, 2]
    assert rec["time_s"] * 4 == pytest.approx(plate["job_time_s"])
    assert rec["energy_kwh"] * 4 == pytest.approx(plate["job_energy_kwh"])
    assert rec["material_g"] * 4 == pytest.approx(plate["job_material_g"])
    assert main(["predict", cube, "--json"]) == 0
    single = check_record(json.loads(capsys.readouterr().out))
    assert single["fdm"]["plate"] is None
    # One heat-up serves four copies: a copy's share of the plate costs less than a part alone.
    assert rec["energy_kwh"] < single["energy_kwh"]
    assert rec["material_g"] == pytest.approx(single["material_g"], rel=0.05)


def test_plate_larger_than_the_bed_is_one_line_error(cube, capsys):
    assert main(["predict", cube, "--copies", "200"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--copies 200" in err and "250 x 210 mm" in err


@pytest.mark.skipif(prusaslicer.executable() is None, reason="prusa-slicer not installed")
def test_four_cubes_within_ten_percent_of_prusaslicer_duplicate(tmp_path):
    stl = need_shared(*CUBE)
    ini = SHARED / "reference" / "prusaslicer" / "mk3s_pla_020.ini"
    ref = prusaslicer.slice_stl(stl, ini, tmp_path / "cube4.gcode", duplicate=4)
    est = predict_part(load_mesh(stl), "fdm", copies=4)
    plate = est.extra["plate"]
    assert plate["job_print_time_s"] == pytest.approx(ref.time_s, rel=0.10)
    assert plate["job_filament_mm"] == pytest.approx(ref.filament_mm, rel=0.05)


def test_each_copys_holes_name_that_copys_island():
    """On a plate of copies every hole still names the island around it: the one of its own
    copy, as far from it as on the single part."""
    import trimesh

    from slicer_energy.fdm.features import decompose
    from slicer_energy.fdm.plate import plate_features
    from slicer_energy.fdm.settings import load_preset
    from slicer_energy.voxelize import voxelize

    ring = trimesh.creation.annulus(r_min=3.0, r_max=6.0, height=1.0)
    post = trimesh.creation.box((3.0, 3.0, 1.0))
    post.apply_translation((10.0, 0.0, 0.0))
    slab = trimesh.creation.box((8.0, 4.0, 1.0)).difference(  # two holes of its own
        trimesh.util.concatenate(
            [trimesh.creation.box((2.0, 2.0, 3.0)).apply_translation((x, 0, 0)) for x in (-2, 2)]
        )
    )
    slab.apply_translation((0.0, 10.0, 0.0))
    part = trimesh.util.concatenate([ring, post, slab])
    part.apply_translation(-part.bounds[0])
    s = load_preset()
    one = decompose(voxelize(part, 0.1, s.layer_height_mm), s)
    plate = plate_features(one, arrange((17.5, 18.0), 4, (250.0, 210.0)), 1)

    def offsets(f):
        isl, hol = f.islands_at[2], f.holes_at[2]
        return hol[:, :2] - isl[hol[:, 3].astype(int), :2]

    assert len(plate.holes_at[2]) == 4 * len(one.holes_at[2]) == 12
    np.testing.assert_allclose(offsets(plate), np.tile(offsets(one), (4, 1)), atol=1e-9)
