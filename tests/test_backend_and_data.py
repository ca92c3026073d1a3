"""Array backend choice and the packaged data folders."""

from __future__ import annotations

import numpy as np
import pytest

from slicer_energy import backend
from slicer_energy.errors import BackendError, ProfileError
from slicer_energy.profiles import load_sourced_toml
from slicer_energy.resources import FOLDERS, data_dir


def test_numpy_by_name_and_env(monkeypatch):
    assert backend.get_xp("numpy") is np
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    assert backend.get_xp() is np


def test_unknown_backend(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "tpu")
    with pytest.raises(BackendError, match="unknown backend 'tpu'.*SLICER_ENERGY_BACKEND"):
        backend.get_xp()


def test_cupy_without_gpu_is_an_error():
    if backend.cupy_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="CuPy is not importable or no CUDA device"):
        backend.get_xp("cupy")
    assert backend.get_xp("auto") is np


@pytest.mark.parametrize("folder", FOLDERS)
def test_data_folders_are_packaged(folder):
    d = data_dir(folder)
    assert (d / "README.md").is_file()


def test_installed_package_reads_data_from_inside_itself():
    """A non-editable install must carry the data (CI installs non-editable)."""
    import slicer_energy

    pkg = data_dir("hardware").resolve()
    if "site-packages" not in str(slicer_energy.__file__):
        pytest.skip("running from an editable checkout")
    assert "site-packages" in str(pkg) and "_data" in str(pkg)


def test_sourced_toml(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text(
        'name = "x"\n[heater]\nsource = "datasheet A"\np_max_w = 40\n'
        'r = { value = 20.5, source = "firmware L10" }\n'
    )
    prof = load_sourced_toml(p)
    assert prof.values["heater"]["p_max_w"] == 40 and prof.values["heater"]["r"] == 20.5
    assert prof.sources == {"heater.p_max_w": "datasheet A", "heater.r": "firmware L10"}
    p.write_text("[heater]\np_max_w = 40\n")
    with pytest.raises(ProfileError, match=r"m.toml: heater.p_max_w = 40 has no source"):
        load_sourced_toml(p)
