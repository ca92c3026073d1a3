"""--printer / --preset / --material with the files makers have: names and aliases, slicer
.ini (PrusaSlicer's vendor bundle, flattened exports), 3MF projects, Orca .json, Klipper
printer.cfg, calibrated profiles in the user data folder. Each works, or fails with one line
and exit code 2. References are independent of the loaders: the shared PrusaSlicer exports
against the hand-written presets, the vendor bundle read by the shared flattening script."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import trimesh

from slicer_energy.cli import main
from slicer_energy.fdm.materials import load_material
from slicer_energy.fdm.settings import load_preset, settings_dict
from slicer_energy.geometry import load_mesh
from slicer_energy.machine import load_machine
from slicer_energy.predict import predict_part

from conftest import CORPUS, need_shared

BUNDLES = Path("/usr/share/PrusaSlicer/profiles")
MK3S = "Original Prusa i3 MK3S & MK3S+"
CONFIGS = CORPUS / "gcode" / "printer_configs"


def _bundle(name: str) -> Path:
    p = BUNDLES / name
    if not p.is_file():
        pytest.skip(f"{p} not installed (Debian package prusa-slicer)")
    return p


def _error_line(capsys, *argv: str) -> str:
    """Run the CLI expecting a user error: exit 2 and exactly one line on stderr."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def cube(tmp_path) -> Path:
    p = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 10)).export(p)
    return p


def test_names_and_aliases_find_the_shipped_printers():
    assert load_machine("ender3").name == "ender3"
    assert load_machine("Ender-3").name == "ender3"
    assert load_machine("ENDER-3 V2").name == "ender3-v2"
    assert load_machine("mk3s").name == "prusa-mk3s"
    assert load_machine("p1s").build_volume_mm == (256, 256, 250)  # machine-data.md A4
    assert load_machine("voron").firmware == "klipper"


def test_a_profile_file_named_so_comes_before_another_files_alias(tmp_path, monkeypatch):
    """find_in: a file named as asked returns without parsing the folder (before another
    file's alias, as find_entry ranks them); an alias still finds its file; the first folder
    that has the name either way wins; a miss lists every folder's names."""
    from slicer_energy import profiles
    from slicer_energy.errors import ProfileError
    from slicer_energy.profiles import ProfileEntry, find_entry, find_in

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    (a / "aa-first.toml").write_text('aliases = ["Mini"]\n')
    (a / "mini.toml").write_text("")
    (b / "other.toml").write_text('aliases = ["Other Alias"]\n')
    (b / "aa-first.toml").write_text("")
    roots = [("a/", a), ("b/", b)]
    index = profiles.profile_index

    def no_parsing(root):
        raise AssertionError(f"{root} parsed for a name that a file has")

    monkeypatch.setattr(profiles, "profile_index", no_parsing)
    assert find_in(roots, "MINI") == a / "mini.toml"
    assert find_in([("b/", b), ("a/", a)], "aa_first") == b / "aa-first.toml"
    monkeypatch.setattr(profiles, "profile_index", index)
    assert find_in(roots, "other-alias") == b / "other.toml"
    (a / "x.toml").write_text('aliases = ["other"]\n')  # an alias in an earlier folder wins
    assert find_in(roots, "other") == a / "x.toml"
    with pytest.raises(ProfileError, match=r"a/: aa-first, mini, x; b/: aa-first, other"):
        find_in(roots, "nothing")
    entries = [ProfileEntry("aa-first", a / "aa-first.toml", ("Mini",)), ProfileEntry("mini", a)]
    assert find_entry(entries, "mini").name == "mini"


def test_vendor_bundle_printer_matches_the_shipped_profile():
    """The MK3S from PrusaSlicer's bundle: its limits equal the hand-sourced prusa-mk3s
    profile's (PrusaResearch.ini of PrusaSlicer@69c8e56), heaters from that profile."""
    m = load_machine(f"{_bundle('PrusaResearch.ini')}:{MK3S}")
    ref = load_machine("prusa-mk3s")
    assert m.kinematics.max_feedrate_mm_s == ref.kinematics.max_feedrate_mm_s
    assert m.kinematics.max_accel_mm_s2 == ref.kinematics.max_accel_mm_s2
    assert m.kinematics.jerk_mm_s == (8, 8, 0.4, 4.5)  # bundle: machine_max_jerk_*, normal mode
    assert m.build_volume_mm == (250, 210, 210)
    assert m.hotend == ref.hotend and m.electrical == ref.electrical
    assert m.source["hotend.p_max_w"].startswith("from: prusa-mk3s profile")


def test_unrecognised_printer_borrows_heaters_marked_as_assumption():
    m = load_machine(f"{_bundle('Creality.ini')}:Creality CR-10 SMART (0.4 mm nozzle)")
    assert m.build_volume_mm == (290, 290, 400)  # [printer:*CR10SMART*] bed_shape 5..295, 400
    assert m.source["bed.p_max_w"].startswith("assumption:")
    assert m.firmware == "marlin"  # gcode_flavor = marlin, whatever the borrowed profile runs


def test_bundle_without_a_name_says_which_exist(capsys, cube):
    err = _error_line(capsys, "predict", str(cube), "--printer", str(_bundle("Voron.ini")))
    assert "pick one as" in err and "Voron_v2_250 0.4 nozzle" in err
    err = _error_line(capsys, "predict", str(cube), "--printer", f"{_bundle('Voron.ini')}:V9")
    assert "no [printer:V9]" in err


@pytest.mark.parametrize(
    ("ini", "preset"),
    [
        ("mk3s_pla_015.ini", "0.15mm-quality"),
        ("mk3s_pla_020.ini", "0.20mm-quality"),
        ("mk3s_pla_030.ini", "0.30mm-draft"),
    ],
)
def test_prusaslicer_exports_reproduce_the_shipped_presets(ini, preset):
    """The shared PrusaSlicer 2.5 exports are what the shipped presets were written from."""
    ref = settings_dict(load_preset(preset))
    got = settings_dict(load_preset(need_shared("reference", "prusaslicer", ini)))
    diff = {k: (ref[k], got[k]) for k in ref if k not in ("name", "path") and ref[k] != got[k]}
    assert diff == {}


def test_arachne_parameters_and_perimeter_generator_from_an_ini(tmp_path, capsys, cube):
    """min_bead_width and min_feature_size in mm or % of the file's nozzle (unset:
    PrusaSlicer 2.5's 85 % and 25 % of it), wall_transition_angle, and the perimeter
    generator; a classic one is modelled as Arachne, with a warning on stderr and in the
    record."""
    ini = tmp_path / "p.ini"
    ini.write_text(
        "nozzle_diameter = 0.6\nmin_bead_width = 0.5\nmin_feature_size = 30%\n"
        "wall_transition_angle = 20\nperimeter_generator = classic\n"
    )
    s = load_preset(ini)
    got = (s.perimeter_generator, s.min_bead_width_mm, s.min_feature_size_mm)
    assert got == ("classic", 0.5, 0.18) and s.wall_transition_angle_deg == 20.0
    assert main(["predict", str(cube), "--preset", str(ini), "--json"]) == 0
    out = capsys.readouterr()
    assert "classic" in out.err and any("classic" in w for w in json.loads(out.out)["warnings"])
    ini.write_text("nozzle_diameter = 0.6\n")
    s = load_preset(ini)
    assert (s.perimeter_generator, s.min_bead_width_mm, s.min_feature_size_mm) == (
        "arachne",
        0.51,
        0.15,
    )
    ini.write_text("perimeter_generator = spiral\n")
    assert "perimeter generator 'spiral'" in _error_line(
        capsys, "predict", str(cube), "--preset", str(ini)
    )


def test_bundle_print_preset_and_relative_speeds():
    s = load_preset(f"{_bundle('PrusaResearch.ini')}:0.20mm QUALITY @MINI")
    assert s.layer_height_mm == 0.2
    # support_material_interface_speed = 80% of support_material_speed in *common*
    assert s.v_support_interface_mm_s == pytest.approx(0.8 * s.v_support_mm_s)


def test_3mf_from_prusaslicer_cli_and_with_settings(capsys, tmp_path, cube):
    """PrusaSlicer's --export-3mf stores no settings: one line says so. A project with
    Metadata/Slic3r_PE.config ('; key = value', as the GUI saves it) gives printer and preset."""
    exe = shutil.which("prusa-slicer")
    if exe is None:
        pytest.skip("prusa-slicer not installed")
    ini = need_shared("reference", "prusaslicer", "mk3s_pla_020.ini")
    bare = tmp_path / "bare.3mf"
    subprocess.run(
        [exe, "--export-3mf", "--load", str(ini), "--output", str(bare), str(cube)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    err = _error_line(capsys, "predict", str(cube), "--preset", str(bare))
    assert "no slicer settings inside" in err
    proj = tmp_path / "project.3mf"
    shutil.copy(bare, proj)
    with zipfile.ZipFile(proj, "a") as z:
        lines = ini.read_text().splitlines()
        z.writestr("Metadata/Slic3r_PE.config", "".join(f"; {ln}\n" for ln in lines))
    blank = {"name": "", "path": ""}
    got = settings_dict(load_preset(proj)) | blank
    assert got == settings_dict(load_preset("0.20mm-quality")) | blank
    assert load_machine(str(proj)).build_volume_mm == (250, 210, 210)


def test_orca_json_printer_and_print(tmp_path):
    p = tmp_path / "orca.json"
    p.write_text(
        json.dumps(
            {
                "printer_model": "Some CoreXY",
                "gcode_flavor": "klipper",
                "printable_area": ["0x0", "300x0", "300x300", "0x300"],
                "printable_height": "300",
                "machine_max_acceleration_x": ["20000", "20000"],
                "machine_max_acceleration_y": ["20000", "20000"],
                "machine_max_acceleration_z": ["500", "200"],
                "machine_max_acceleration_e": ["5000", "5000"],
                "nozzle_temperature": ["220"],
                "sparse_infill_density": "10%",
                "wall_loops": "3",
            }
        )
    )
    m = load_machine(str(p))
    assert m.firmware == "klipper"
    assert m.kinematics.max_accel_mm_s2 == (20000, 20000, 500, 5000)
    assert m.build_volume_mm == (300, 300, 300)
    s = load_preset(p)
    assert (s.hotend_c, s.infill_density, s.perimeters) == (220, 0.10, 3)


def test_corpus_klipper_configs(capsys):
    cfg = need_shared("corpus", "gcode", "printer_configs", "theshamot_klipper_printer.cfg")
    m = load_machine(str(cfg))
    assert m.firmware == "klipper"
    assert m.kinematics.klipper_max_accel_mm_s2 == 2000  # [printer] max_accel: 2000
    assert m.build_volume_mm[:2] == (235, 235)  # [stepper_x/y] position_max: 235
    assert load_machine(str(CONFIGS / "kjuchniewicz_klipper_machine.cfg")).firmware == "klipper"
    err = _error_line(
        capsys, "gcode", "x.gcode", "--printer", str(CONFIGS / "kjuchniewicz_klipper_printer.cfg")
    )
    assert "no [printer] section" in err and "machine.cfg" in err


def test_gcode_command_with_a_klipper_config(capsys):
    cfg = need_shared("corpus", "gcode", "printer_configs", "theshamot_klipper_printer.cfg")
    gc = CORPUS / "gcode" / "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz"
    assert main(["gcode", str(gc), "--printer", str(cfg), "--json"]) == 0
    assert "klipper" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value", "expect"),
    [
        ("--printer", "/path/nothere.toml", "/path/nothere.toml: no such file"),
        ("--printer", "nothere.cfg", "nothere.cfg: no such file"),
        ("--preset", "superslicer.ini", "superslicer.ini: no such file"),
        ("--printer", "ender9", "ender3-v2"),  # the names that exist are listed
        ("--preset", "0.1mm-fine", "0.20mm-quality"),
        ("--material", "PEEK", "petg"),
    ],
)
def test_unknown_files_and_names_are_one_line(capsys, cube, option, value, expect):
    assert expect in _error_line(capsys, "predict", str(cube), option, value)


def _flatten_script():
    path = need_shared("reference", "prusaslicer", "flatten_profile.py")
    spec = importlib.util.spec_from_file_location("flatten_profile", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["PLA", "PETG", "ABS", "ASA", "PA", "TPU"])
def test_materials_match_the_vendor_bundle(name):
    """Each shipped material's numbers, read again from the section its source names by the
    shared flattening script (not by the package's reader)."""
    mat = load_material(name)
    fl = _flatten_script()
    bundle = _bundle("PrusaResearch.ini")
    section = Path(mat.path).read_text().split("[filament:")[1].split("]")[0]
    ref = fl.resolve(fl.load(str(bundle)), "filament", section)
    assert mat.temperatures_c == {
        "hotend_c": float(ref["temperature"]),
        "first_layer_hotend_c": float(ref["first_layer_temperature"]),
        "bed_c": float(ref["bed_temperature"]),
        "first_layer_bed_c": float(ref["first_layer_bed_temperature"]),
    }
    assert mat.density_g_cm3 == float(ref["filament_density"])


def test_petg_prediction_runs_at_petg_temperatures(cube):
    part = load_mesh(cube)
    pla = predict_part(part, "fdm")
    petg = predict_part(part, "fdm", material="PETG")
    s = petg.settings
    # Prusament PETG in PrusaSlicer's bundle: 240/250 °C nozzle, 85/90 °C bed
    assert (s["first_layer_hotend_c"], s["hotend_c"]) == (240, 250)
    assert (s["first_layer_bed_c"], s["bed_c"]) == (85, 90)
    assert s["material"] == "PETG"
    assert petg.material_g / pla.material_g == pytest.approx(1.27 / 1.24)
    assert petg.energy_j > pla.energy_j  # hotter bed and nozzle


def test_calibrated_profile_found_by_name_from_any_folder(
    capsys, tmp_path, monkeypatch, example_session
):
    data = tmp_path / "data"
    monkeypatch.setenv("SLICER_ENERGY_DATA", str(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["calibrate", str(example_session)]) == 0
    out = capsys.readouterr().out
    assert "use it with: --printer ender3-v2-calibrated" in out
    assert (data / "calibrated" / "ender3-v2-calibrated.toml").is_file()
    assert not (elsewhere / "calib").exists()
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    m = load_machine("ender3-v2-calibrated")
    assert m.calibrated
    assert main(["profiles", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"kind": "calibrated", "name": "ender3-v2-calibrated"}.items() <= next(
        r for r in rows if r["name"] == "ender3-v2-calibrated"
    ).items()
    assert any(r["kind"] == "material" and r["name"] == "petg" for r in rows)
    assert any(r["kind"] == "printer" and "ender-3" in r["aliases"] for r in rows)


def test_profiles_lists_a_bundles_presets(capsys):
    assert main(["profiles", "--from", str(_bundle("PrusaResearch.ini")), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"kind": "printer", "name": MK3S} in [
        {"kind": r["kind"], "name": r["name"]} for r in rows
    ]
    assert any(r["kind"] == "filament" and r["name"] == "Prusament PETG" for r in rows)


def test_every_shipped_printer_loads_and_aliases_are_unique():
    from slicer_energy.profiles import profile_index, profile_key
    from slicer_energy.resources import data_dir

    seen: dict[str, str] = {}
    for e in profile_index(data_dir("hardware") / "fdm"):
        assert load_machine(e.name).name == e.name
        for key in (e.name, *e.aliases):
            assert seen.setdefault(profile_key(key), e.name) == e.name, f"{key} names two printers"
