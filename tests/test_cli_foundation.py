"""The installed console script: voxelize/samples output, and bad input as one line + exit 2."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "slicer-energy"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "slicer_energy.cli"]
    env = dict(os.environ, SLICER_ENERGY_BACKEND="numpy")
    return subprocess.run(
        [*exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_voxelize_json_on_sample_phone_case(tmp_path):
    r = run_cli("voxelize", "phone_case", "--pitch", "0.2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("shape", "voxel_volume_mm3", "mesh_volume_mm3", "seconds", "backend"):
        assert key in out
    assert out["backend"] == "numpy"
    assert out["shape"] == [45, 750, 360]
    assert abs(out["voxel_volume_mm3"] / out["mesh_volume_mm3"] - 1) < 0.01


def test_voxelize_table(tmp_path):
    r = run_cli("voxelize", "phone_case", "--pitch", "0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "exact mesh volume" in r.stdout and "difference" in r.stdout


def test_samples_writes_stl_files(tmp_path):
    r = run_cli("samples", "--out", "parts", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("phone_case", "bracket", "bracket_bionic"):
        assert (tmp_path / "parts" / f"{name}.stl").stat().st_size > 10_000


def _bad_files(tmp: Path) -> dict[str, Path]:
    files = {
        "empty": tmp / "empty.stl",
        "garbage": tmp / "garbage.stl",
        "huge_header": tmp / "huge.stl",
        "garbage_3mf": tmp / "garbage.3mf",
    }
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(os.urandom(3000))
    files["huge_header"].write_bytes(b"\0" * 80 + struct.pack("<I", 2**31) + b"\1" * 64)
    files["garbage_3mf"].write_bytes(os.urandom(3000))
    return files


@pytest.mark.parametrize("case", ["empty", "garbage", "huge_header", "garbage_3mf", "missing"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    files = _bad_files(tmp_path)
    path = files.get(case, tmp_path / "missing.stl")
    r = run_cli("voxelize", str(path), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("slicer-energy: error: ") and path.name in lines[0]
    assert "Traceback" not in r.stderr


def test_bad_settings_exit_2(tmp_path):
    r = run_cli("voxelize", "phone_case", "--pitch", "-1", cwd=tmp_path)
    assert r.returncode == 2 and "--pitch" in r.stderr


def test_cupy_backend_missing_is_a_clear_error(tmp_path):
    from slicer_energy.backend import cupy_available

    if cupy_available():
        pytest.skip("a GPU is present")
    r = run_cli("voxelize", "phone_case", "--backend", "cupy", cwd=tmp_path)
    assert r.returncode == 2 and "CuPy" in r.stderr


def test_help_teaches(tmp_path):
    r = run_cli("voxelize", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "examples:" in r.stdout and "phone_case" in r.stdout
