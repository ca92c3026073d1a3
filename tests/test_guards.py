"""Limits and names from content: one-line errors (exit 2), nothing big allocated, nothing
written outside the folder the user gave (issue 14, items 7, 8 and 10).

Size-guard cases run the real CLI in a subprocess under ``RLIMIT_AS``: a guard that came
after the allocation would show up as a ``MemoryError`` traceback there instead of the
one-line refusal.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from slicer_energy.cli import main
from slicer_energy.errors import SlicerEnergyError
from slicer_energy.memory import ENV
from slicer_energy.paths import safe_name
from slicer_energy.profiles import find_profile
from slicer_energy.resources import data_dir
from slicer_energy.samples import sample_mesh

REPO = Path(__file__).resolve().parent.parent
LIMIT_AS = 3 * 2**30  # address space for a CLI run: imports fit, a big grid does not


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process with at most LIMIT_AS of address space."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))

    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    full_env.pop(ENV, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "slicer_energy.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        preexec_fn=limit,
        timeout=300,
    )


def one_error_line(rc: int, err: str, *needles: str) -> str:
    """Exit 2, no traceback, and exactly one error line, the last on stderr (earlier lines
    may be the mesh loader's warnings)."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def cli(capsys, *args: str) -> str:
    """Run ``main`` in-process, expecting a one-line user error; return that line."""
    try:
        rc = main(list(args))
    except SystemExit as exc:  # argparse rejects the option itself
        rc = exc.code
    return one_error_line(rc, capsys.readouterr().err)


@pytest.fixture
def part_in_metres(tmp_path) -> Path:
    m = sample_mesh("phone_case")
    m.apply_scale(0.001)  # 72 x 150 x 9 mm written as metres
    p = tmp_path / "case_m.stl"
    m.export(p)
    return p


@pytest.fixture
def part_20m(tmp_path) -> Path:
    m = sample_mesh("phone_case")
    m.apply_scale(20_000 / 150)
    p = tmp_path / "case_20m.stl"
    m.export(p)
    return p


def _box(tmp_path: Path, name: str, size: tuple[float, float, float]) -> Path:
    m = trimesh.creation.box(size)
    m.apply_translation(np.asarray(size) / 2)
    p = tmp_path / name
    m.export(p)
    return p


# --------------------------------------------------------------- item 8: size guard


def test_voxelize_nanometre_pitch_is_refused_before_allocating():
    """Was: ValueError 'array is too big' traceback from xp.zeros."""
    r = run_cli("voxelize", "phone_case", "--pitch", "1e-9")
    one_error_line(r.returncode, r.stderr, "cells", "EiB", "finest xy pitch", "--max-memory")


def test_part_too_big_for_the_chamber_is_refused_before_voxelising(part_20m):
    """Was: _ArrayMemoryError (10.9 TiB SLS, 1.68 TiB MLS) traceback."""
    for process in ("sls", "mls"):
        r = run_cli("predict", str(part_20m), "--process", process)
        one_error_line(r.returncode, r.stderr, "does not fit the build volume")


def test_voxelize_huge_part_gives_grid_size_and_a_pitch_that_fits(part_20m):
    """Was: _ArrayMemoryError (105 TiB) traceback."""
    r = run_cli("voxelize", str(part_20m))
    one_error_line(r.returncode, r.stderr, "6,000 x 200,000 x 96,000", "TiB", "finest xy pitch")


def test_budget_from_env_and_option_and_the_suggested_pitch_fits():
    """A grid that fits memory but not the budget stops; the pitch the message offers runs;
    --max-memory raises the budget. Was: no budget at all."""
    env = {ENV: "0.05"}
    r = run_cli("voxelize", "phone_case", env=env)
    line = one_error_line(r.returncode, r.stderr, f"${ENV} = 0.05", "cells")
    pitch = re.search(r"finest xy pitch that fits is ([0-9.]+) mm", line).group(1)
    assert run_cli("voxelize", "phone_case", "--pitch", pitch, env=env).returncode == 0
    assert run_cli("voxelize", "phone_case", "--max-memory", "1", env=env).returncode == 0


def test_library_paths_share_the_guard(monkeypatch):
    """predict (FDM, SLS, MLS) and the batch's precomputed layers (part_layers) all stop."""
    from slicer_energy.errors import SettingsError
    from slicer_energy.predict import predict_part
    from slicer_energy.samples import resolve_part
    from slicer_energy.sintering.powderbed import part_layers

    part = resolve_part("phone_case")
    for process in ("fdm", "sls", "mls"):
        with pytest.raises(SettingsError, match="--max-memory 0.001"):
            predict_part(part, process, max_memory_gb=0.001)
    monkeypatch.setenv(ENV, "0.001")
    with pytest.raises(SettingsError, match=f"\\${ENV}"):
        part_layers(part, 0.4, 0.12)
    monkeypatch.setenv(ENV, "nan")
    with pytest.raises(SettingsError, match="positive number of GiB"):
        part_layers(part, 0.4, 0.12)


# ---------------------------------------------------- item 10: a part in metres, thin parts


@pytest.mark.parametrize(
    "args",
    [
        ["predict"],  # was: ValueError broadcast in fdm/masks.py long_runs
        ["predict", "--process", "sls"],  # was: ZeroDivisionError at sls.py:217
        ["predict", "--process", "mls"],  # was: 66 million kWh/kg printed as a result
        ["compare"],  # was: the FDM broadcast traceback
        ["voxelize"],  # was: "-100 %" volume error printed as a result
    ],
    ids=lambda a: "-".join(a),
)
def test_part_in_metres_suggests_units(capsys, part_in_metres, args):
    line = cli(capsys, args[0], str(part_in_metres), *args[1:])
    assert "--units m" in line and "0.072 x 0.15" in line


def test_sheet_thinner_than_half_a_layer_is_refused_in_sls(capsys, tmp_path):
    """Was: ZeroDivisionError (no scanned volume) at sls.py:217."""
    sheet = _box(tmp_path, "sheet.stl", (20.0, 20.0, 0.05))
    assert "no solid cell" in cli(capsys, "predict", str(sheet), "--process", "sls")


def test_fdm_thin_wall_predicts(capsys, tmp_path):
    """A 0.4 mm wall is narrower than the 1 mm chord of the hole-break count.
    Was: ValueError 'operands could not be broadcast' in _long_runs."""
    wall = _box(tmp_path, "wall.stl", (0.4, 30.0, 10.0))
    assert main(["predict", str(wall), "--json"]) == 0
    assert '"energy_kwh"' in capsys.readouterr().out


# ------------------------------------------------------------ item 10: numeric options


@pytest.mark.parametrize("eta", ["0", "nan", "-1", "1.5"])
def test_calibrate_fix_psu_efficiency_out_of_range(capsys, example_session, tmp_path, eta):
    """Was: ValueError 'Residuals are not finite in the initial point' from scipy."""
    out = tmp_path / "out.toml"
    line = cli(
        capsys, "calibrate", str(example_session), "--fix-psu-efficiency", eta, "--out", str(out)
    )
    assert "--fix-psu-efficiency" in line and "[0.3, 1]" in line
    assert not out.exists()


@pytest.mark.parametrize("n", ["-5", "100000000"])
def test_lca_monte_carlo_count_out_of_range(capsys, n):
    """Was: negative dimensions traceback; 1e8 draws tried to allocate 44 GiB."""
    assert "--monte-carlo" in cli(capsys, "lca", "phone-case", "--monte-carlo", n)


def test_samples_out_is_an_existing_file(capsys, tmp_path):
    """Was: FileExistsError traceback from mkdir."""
    f = tmp_path / "taken.stl"
    f.write_text("x")
    assert "not a folder" in cli(capsys, "samples", "--out", str(f))
    assert f.read_text() == "x"


# ----------------------------------------------------------- item 7: names from content


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../../x", "a/b", "a\\b", "/abs", "C:x", "tab\there", " pad"]
)
def test_safe_name_refuses(name):
    with pytest.raises(SlicerEnergyError, match="f.toml: key 'k'"):
        safe_name(name, "f.toml: key 'k'")


@pytest.mark.parametrize("name", ["phone-case", "Ender-3 V2 (calibrated)", "Prusa MK3S+", "v1.2"])
def test_safe_name_keeps_ordinary_names(name):
    assert safe_name(name, "x") == name


def test_lca_study_name_cannot_leave_the_plots_folder(capsys, tmp_path):
    """Was: plots written two levels above --plots."""
    src = data_dir("lca") / "scenarios" / "phone-case.toml"
    text = re.sub(r"(?m)^study = .*$", 'study = "../../escaped_lca"', Path(str(src)).read_text())
    evil = tmp_path / "evil.toml"
    evil.write_text(text)
    plots = tmp_path / "a" / "b" / "plots"
    line = cli(capsys, "lca", str(evil), "--plots", str(plots))
    assert f"{evil}: key 'study'" in line
    assert not list(tmp_path.rglob("escaped_lca*"))


def test_calibrate_profile_name_cannot_leave_calib(capsys, example_session, tmp_path, monkeypatch):
    """Was: calib/../../escaped_calib-calibrated.toml written outside calib/."""
    base = Path(find_profile("hardware", "ender3-v2"))
    text = re.sub(r"(?m)^name = .*$", 'name = "../../escaped_calib"', base.read_text())
    evil = tmp_path / "evil.toml"
    evil.write_text(text)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    line = cli(capsys, "calibrate", str(example_session), "--base", str(evil))
    assert f"{evil}: key 'name'" in line
    assert not list(tmp_path.rglob("escaped_calib*"))
