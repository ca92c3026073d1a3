"""FDM model from geometry: presets vs PrusaSlicer's .ini, features, time, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from slicer_energy.errors import SettingsError
from slicer_energy.fdm.features import decompose
from slicer_energy.fdm.predict import predict_fdm
from slicer_energy.fdm.settings import load_preset
from slicer_energy.fdm.time import _cooling_cap, layer_times, trapezoid_s
from slicer_energy.geometry import prepare_mesh
from slicer_energy.voxelize import voxelize

from conftest import check_record, need_shared


def _box(x, y, z, at=(0.0, 0.0)):
    m = trimesh.creation.box((x, y, z))
    m.apply_translation((at[0], at[1], z / 2))
    return m


def _read_ini(path):
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


@pytest.mark.parametrize(
    "preset,ini",
    [
        ("0.20mm-quality", "mk3s_pla_020.ini"),
        ("0.15mm-quality", "mk3s_pla_015.ini"),
        ("0.30mm-draft", "mk3s_pla_030.ini"),
    ],
)
def test_presets_mirror_prusaslicer_ini(preset, ini):
    cfg = _read_ini(need_shared("reference", "prusaslicer", ini))
    s = load_preset(preset)
    pairs = {
        "layer_height": s.layer_height_mm,
        "first_layer_height": s.first_layer_height_mm,
        "perimeters": s.perimeters,
        "top_solid_layers": s.top_layers,
        "bottom_solid_layers": s.bottom_layers,
        "top_solid_min_thickness": s.top_min_thickness_mm,
        "bottom_solid_min_thickness": s.bottom_min_thickness_mm,
        "external_perimeter_extrusion_width": s.w_external_perimeter_mm,
        "perimeter_extrusion_width": s.w_perimeter_mm,
        "infill_extrusion_width": s.w_infill_mm,
        "solid_infill_extrusion_width": s.w_solid_infill_mm,
        "top_infill_extrusion_width": s.w_top_infill_mm,
        "first_layer_extrusion_width": s.w_first_layer_mm,
        "support_material_extrusion_width": s.w_support_mm,
        "external_perimeter_speed": s.v_external_perimeter_mm_s,
        "perimeter_speed": s.v_perimeter_mm_s,
        "small_perimeter_speed": s.v_small_perimeter_mm_s,
        "infill_speed": s.v_infill_mm_s,
        "solid_infill_speed": s.v_solid_infill_mm_s,
        "top_solid_infill_speed": s.v_top_solid_infill_mm_s,
        "bridge_speed": s.v_bridge_mm_s,
        "support_material_speed": s.v_support_mm_s,
        "first_layer_speed": s.v_first_layer_mm_s,
        "travel_speed": s.v_travel_mm_s,
        "perimeter_acceleration": s.a_perimeter_mm_s2,
        "infill_acceleration": s.a_infill_mm_s2,
        "first_layer_acceleration": s.a_first_layer_mm_s2,
        "retract_length": s.retract_mm,
        "retract_speed": s.retract_speed_mm_s,
        "retract_lift": s.retract_lift_mm,
        "slowdown_below_layer_time": s.min_layer_time_s,
        "min_print_speed": s.min_print_speed_mm_s,
        "skirts": s.skirt_loops,
        "skirt_distance": s.skirt_distance_mm,
        "skirt_height": s.skirt_height_layers,
        "min_skirt_length": s.skirt_min_length_mm,
        "support_material_threshold": s.support_threshold_deg,
        "support_material_spacing": s.support_spacing_mm,
        "support_material_interface_layers": s.support_interface_layers,
        "temperature": s.hotend_c,
        "bed_temperature": s.bed_c,
        "bridge_flow_ratio": s.bridge_flow_ratio,
    }
    for key, ours in pairs.items():
        assert float(cfg[key]) == pytest.approx(ours), key
    assert float(cfg["fill_density"].rstrip("%")) / 100 == pytest.approx(s.infill_density)
    assert cfg["fill_pattern"] == s.infill_pattern
    iface = float(cfg["support_material_interface_speed"].rstrip("%")) / 100
    assert iface * float(cfg["support_material_speed"]) == pytest.approx(s.v_support_interface_mm_s)


def test_layer_height_above_80_percent_of_nozzle_is_refused():
    with pytest.raises(SettingsError, match="80 %"):
        load_preset().with_overrides(layer_height_mm=0.35)


def test_negative_infill_is_refused():
    part = prepare_mesh(_box(10, 10, 5))
    with pytest.raises(SettingsError, match="infill -5"):
        predict_fdm(part, infill_percent=-5)


@pytest.mark.parametrize("size,axes", [((300, 50, 10), "x"), ((20, 20, 230), "z")])
def test_part_larger_than_the_build_volume_is_refused_with_its_size(size, axes):
    part = prepare_mesh(_box(*size))
    with pytest.raises(SettingsError) as exc:
        predict_fdm(part)
    msg = str(exc.value)
    assert f"{size[0]:.1f} x {size[1]:.1f} x {size[2]:.1f} mm" in msg
    assert "250 x 210 x 210" in msg and axes in msg.split("too large in")[1]


def _features(mesh, pitch=0.1, **over):
    s = load_preset().with_overrides(**over)
    g = voxelize(mesh, pitch, s.layer_height_mm)
    return decompose(g, s), s


def test_box_perimeter_lengths_and_shells():
    f, s = _features(_box(20, 20, 10))
    mid = 25
    # External loop centre line: w/2 inside the 20 mm square, length 4·(20 − w) − rounding.
    t1 = (
        s.w_external_perimeter_mm / 2
        + (s.spacing_mm(s.w_external_perimeter_mm) + s.spacing_mm(s.w_perimeter_mm)) / 4
    )
    expect = 80 - 4 * t1  # band area / band width of a square band
    assert f.length_mm["external_perimeter"][mid] == pytest.approx(expect, rel=0.01)
    assert f.islands[mid] == 1 and f.loops[mid] == 1
    solid = f.area_mm2["solid_infill"] + f.area_mm2["top_solid_infill"]
    solid = solid + f.area_mm2["bridge_infill"]
    sparse = f.area_mm2["internal_infill"]
    layers_solid = np.flatnonzero(sparse == 0)
    # 4 bottom + 6 top solid layers on a 50-layer box; everything else sparse.
    assert len(layers_solid) == s.bottom_layers_eff + s.top_layers_eff
    assert (solid[sparse > 0] == 0).all()
    # The first solid layer above the sparse infill is laid as a bridge.
    assert f.area_mm2["bridge_infill"][50 - s.top_layers_eff] > 0


def test_full_infill_extrudes_the_part_volume():
    """With 100 % infill every bead cross-section tiles the solid: filament = part volume."""
    mesh = _box(30, 20, 8)
    f, s = _features(mesh, infill_density=1.0, skirt_loops=0)
    vol = f.total_volume_mm3() - f.volume_mm3["skirt_brim"].sum()
    # Anchors add a little; perimeters of a box are exact.
    assert vol == pytest.approx(mesh.volume, rel=0.03)


def test_islands_and_holes_are_counted():
    two = trimesh.util.concatenate([_box(10, 10, 2), _box(10, 10, 2, at=(20, 0))])
    f, _ = _features(two)
    assert (f.islands == 2).all()
    ring = trimesh.creation.annulus(r_min=5, r_max=10, height=2)
    ring.apply_translation((0, 0, 1))
    f, _ = _features(ring)
    assert (f.islands == 1).all() and (f.loops == 2).all()
    # Both loops of the ring are shorter than 2π·6.5 mm? No: only the hole's is.
    assert 0.2 < f.small_perimeter_fraction[5] < 0.5


def test_supports_only_under_overhangs_and_down_to_the_plate():
    pillar = _box(10, 10, 10)
    slab = _box(30, 10, 2)
    slab.apply_translation((0, 0, 10))
    t = trimesh.boolean.union([pillar, slab], engine="manifold")
    f_off, _ = _features(t)
    f_on, s = _features(t, supports=True)
    sup = f_on.area_mm2["support_material"] + f_on.area_mm2["support_material_interface"]
    assert f_off.area_mm2["support_material"].sum() == 0
    assert sup[0] > 0  # columns stand on the plate
    gap = round(s.support_contact_distance_mm / s.layer_height_mm)
    assert sup[50 - gap :].sum() == 0  # nothing in the contact gap or above the slab
    # Two 10 x 10 mm overhangs, minus the xy gap to the pillar, grown by the fitted factor.
    assert 100 < sup[10] < 2.2 * 200


def test_trapezoid_matches_integration():
    L, v, a, vj = 3.0, 80.0, 1000.0, 8.0
    ts = np.linspace(0, 1, 200001)
    # Integrate a bang-cruise-bang profile numerically.
    vp = min(v, math.sqrt(vj * vj + a * L))
    t_acc = (vp - vj) / a
    d_acc = (vp * vp - vj * vj) / (2 * a)
    t_cruise = (L - 2 * d_acc) / vp
    total = 2 * t_acc + t_cruise
    dt = ts[1] - ts[0]
    pos = 0.0
    for t in ts:
        if t > total:
            break
        vel = (
            vj + a * t
            if t < t_acc
            else (vp if t < t_acc + t_cruise else vp - a * (t - t_acc - t_cruise))
        )
        pos += vel * dt
    assert pos == pytest.approx(L, rel=1e-3)
    assert float(trapezoid_s(L, v, a, vj)) == pytest.approx(total, rel=1e-9)


def test_cooling_cap_stretches_small_layers_to_the_minimum_time():
    lengths = np.array([[100.0, 1000.0], [200.0, 2000.0]])
    speeds = np.array([[25.0, 25.0], [80.0, 80.0]])
    cap = _cooling_cap(lengths, speeds, np.zeros(2), 15.0, 5.0)
    assert math.isinf(cap[1])  # 65 s layer: not slowed
    t = (lengths[:, 0] / np.minimum(speeds[:, 0], cap[0])).sum()
    assert t == pytest.approx(15.0, rel=1e-6)


def test_small_layers_take_the_minimum_layer_time_unless_at_minimum_speed():
    for size in (8, 20):
        f, s = _features(_box(size, size, 6))
        tr = layer_times(f, s)
        short = tr.layer_s < s.min_layer_time_s * 0.999
        # Too short only where every extrusion already runs at min_print_speed.
        assert (tr.speed_cap_mm_s[short] == s.min_print_speed_mm_s).all()
        if size == 8:
            assert np.isfinite(tr.speed_cap_mm_s[1:]).all()  # every layer of it slowed
    assert not short.any()  # the 20 mm box reaches 15 s per layer


def test_predict_estimate_splits_time_energy_and_filament():
    est = predict_fdm(prepare_mesh(_box(20, 20, 10)))
    assert est.process == "fdm" and est.machine == "prusa-mk3s"
    assert est.time_s == pytest.approx(sum(est.time_by_phase_s.values()))
    assert est.energy_j == pytest.approx(sum(est.energy_by_component_j.values()))
    assert est.energy_j == pytest.approx(sum(est.energy_by_phase_j.values()))
    assert est.time_by_phase_s["print"] == pytest.approx(est.extra["print_time_s"])
    fil = est.extra["filament_mm"]
    assert est.material_g == pytest.approx(fil * math.pi * 1.75**2 / 4 * 1.24e-3)
    # The bed is the biggest consumer of a short PLA print (60 °C for the whole job).
    comp = est.energy_by_component_j
    assert comp["bed"] == max(comp.values())


def test_cli_json_and_errors(tmp_path):
    p = tmp_path / "box.stl"
    _box(20, 20, 5).export(p)
    cmd = [
        sys.executable,
        "-m",
        "slicer_energy.cli",
        "predict",
        str(p),
        "--json",
        "--price-per-kwh",
        "0.3",
        "--grid",
        "400",
        "--infill",
        "20",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rec = json.loads(out.stdout)
    check_record(rec)
    assert rec["cost"]["total"] == pytest.approx(0.3 * rec["energy_kwh"])
    assert rec["co2_kg"] == pytest.approx(0.4 * rec["energy_kwh"])
    assert rec["settings"]["infill_density"] == pytest.approx(0.2)
    bad = subprocess.run(cmd[:5] + ["--layer-height", "0.5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "80 %" in bad.stderr
    helptext = subprocess.run(
        [sys.executable, "-m", "slicer_energy.cli", "predict", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--printer" in helptext and "--supports" in helptext


def test_numpy_and_cupy_features_agree(xp):
    mesh = _box(12, 9, 4)
    s = load_preset()
    g = voxelize(mesh, 0.1, 0.2, xp=xp)
    f = decompose(g, s)
    ref = decompose(voxelize(mesh, 0.1, 0.2, xp="numpy"), s)
    for k in f.length_mm:
        np.testing.assert_allclose(f.length_mm[k], ref.length_mm[k], rtol=1e-6, atol=1e-6)


def _frustum(bottom_mm, top_mm, height_mm):
    """Square frustum centred on the origin, standing on the plate (convex hull of 8 corners)."""
    b, t = bottom_mm / 2, top_mm / 2
    pts = [(x * b, y * b, 0.0) for x in (-1, 1) for y in (-1, 1)]
    pts += [(x * t, y * t, height_mm) for x in (-1, 1) for y in (-1, 1)]
    return trimesh.convex.convex_hull(np.array(pts))


def test_top_surface_takes_the_infill_within_3_mm_of_it():
    """PrusaSlicer grows a top surface by EXTERNAL_INFILL_MARGIN (3 mm) into that layer's infill."""
    lower = _box(40, 30, 5)
    upper = _box(10, 30, 10, at=(-15, 0))
    mesh = trimesh.boolean.union([lower, upper], engine="manifold")
    s = load_preset("0.20mm-quality")
    f = decompose(voxelize(mesh, 0.1, 0.2), s)
    k = 24  # the lower step's top layer (4.8..5.0 mm)
    t_shell = 0.45 / 2 + 0.5 * (2 * s.spacing_mm(0.45)) / 2 + s.spacing_mm(0.45) / 2
    interior_w = 30 - 2 * t_shell
    exposed = (40 - 10 - t_shell) * interior_w
    assert f.area_mm2["top_solid_infill"][k] == pytest.approx(exposed + 3.0 * interior_w, rel=0.05)
    assert f.area_mm2["top_solid_infill"][k - 1] == 0.0


@pytest.mark.parametrize("angle_deg,solid", [(85.0, False), (55.0, True)])
def test_vertical_shell_solid_only_where_the_band_is_wider_than_a_line(angle_deg, solid):
    """Steep walls move less than 1.05 line spacings over the shell layers: no extra solid."""
    h = 20.0
    top = 30.0 - 2 * h / math.tan(math.radians(angle_deg))
    s = load_preset("0.20mm-quality")
    f = decompose(voxelize(_frustum(30.0, top, h), 0.1, 0.2), s)
    mid = slice(20, 70)
    solid_mm2 = f.area_mm2["solid_infill"][mid].mean()
    assert bool(solid_mm2 > 20.0) is solid, solid_mm2


def test_gentle_overhang_gets_support_on_a_coarse_grid():
    """A 48° overhang moves 0.18 mm a layer, less than half a 0.3 mm cell: found from the faces."""
    mesh = _frustum(10.0, 28.0, 10.0)  # widens upwards at 48°: 0.18 mm a layer
    s = load_preset("0.20mm-quality").with_overrides(supports=True)
    g = voxelize(mesh, 0.3, 0.2)
    with_mesh = decompose(g, s, mesh=mesh)
    without = decompose(g, s)
    sup = with_mesh.volume_mm3["support_material"].sum()
    assert sup > 2 * without.volume_mm3["support_material"].sum()
    # The support sits in the shadow of the overhang: its area below the top layer is less
    # than the top's footprint minus the base (plus the growth), and more than zero.
    a = with_mesh.area_mm2["support_material"] + with_mesh.area_mm2["support_material_interface"]
    assert 0 < a[10] < (28 + 4) ** 2 - 10**2


def test_mk4_profile_matches_the_sourced_machine_notes():
    """prusa-mk4's kinematic limits are the PrusaSlicer MK4 IS values in machine-data.md A2."""
    import re

    from slicer_energy.machine import load_machine

    notes = need_shared("reference", "machine-data.md").read_text()
    a2 = notes.split("## A2.")[1].split("## A3.")[0]

    def row(label):
        line = next(ln for ln in a2.splitlines() if ln.startswith(f"| {label} |"))
        return [float(x) for x in re.findall(r"[\d.]+", line.split("|")[2])]

    k = load_machine("prusa-mk4").kinematics
    fxy, fz, fe = row("max feedrate x,y / z / e")[:3]
    jxy, jz, je = row("max jerk x,y / z / e")[:3]
    axy = row("max accel x,y (normal, stealth)")[0]
    az, ae, a_extr, a_retr, a_trav = row("max accel z / e / extruding / retracting / travel")[:5]
    assert k.max_feedrate_mm_s == (fxy, fxy, fz, fe)
    assert k.jerk_mm_s == (jxy, jxy, jz, je)
    assert k.max_accel_mm_s2 == (axy, axy, az, ae)
    assert (k.accel_print_mm_s2, k.accel_retract_mm_s2, k.accel_travel_mm_s2) == (
        a_extr,
        a_retr,
        a_trav,
    )
    assert load_machine("prusa-mk4").build_volume_mm == (250.0, 210.0, 220.0)


def test_draft_first_layer_is_thinner_than_the_rest():
    """0.30mm DRAFT prints a 2 mm part as 0.2 mm + 6 x 0.3 mm layers, as PrusaSlicer does."""
    est = predict_fdm(_box(20, 20, 2.0), preset="0.30mm-draft")
    assert est.extra["layers"] == 7
    # At 100 % infill the part's filament (skirt aside) is its volume: a 0.3 mm first
    # layer would add 5 %.
    full = predict_fdm(_box(20, 20, 2.0), preset="0.30mm-draft", infill_percent=100)
    part_mm = full.extra["filament_mm"] - full.extra["filament_by_feature_mm"]["skirt_brim"]
    assert part_mm * math.pi * 1.75**2 / 4 == pytest.approx(20 * 20 * 2.0, rel=0.02)


def test_junction_speed_follows_classic_jerk_per_axis():
    """Worked by hand: at 45° a 90° turn reverses x (jump 0.707 v) and keeps y: v = 8/0.707;
    a 30° turn there changes x by 0.448 v and y by 0.259 v: v = 8/0.448. From an axis, a 90°
    turn stops x and starts y (jump v): v = 8 mm/s, the full jerk stop."""
    from slicer_energy.fdm.time import junction_speeds

    assert junction_speeds(math.pi / 2, 8.0, n=1)[0] == pytest.approx(8 / math.sqrt(0.5))
    c = math.sqrt(0.5) - math.cos(math.radians(75))
    assert junction_speeds(math.radians(30), 8.0, n=1)[0] == pytest.approx(8 / c)
    assert junction_speeds(math.pi / 2, 8.0, n=900).min() == pytest.approx(8.0, rel=1e-3)
