"""``predict`` imports only what it uses (issue 17 item 4): the CLI registers the command it
runs, so a prediction never loads the G-code, LCA, batch or plotting code, nor trimesh for a
clean STL (slicer_energy.mesh reads and checks it in NumPy), nor SciPy (the feature model's
per-layer transforms are OpenCV's, slicer_energy.fdm.grid_ops)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import need_shared

HEAVY = ("slicer_energy.gcode", "slicer_energy.lca", "slicer_energy.batch", "pandas", "dask")
HEAVY += ("matplotlib", "numba", "jsonschema")
# a clean STL is read and checked in NumPy: trimesh (~0.6 s) stays out; so does SciPy
# (scipy.ndimage ~0.15 s, scipy.spatial ~0.17 s)
HEAVY += ("trimesh", "scipy")


def _modules_after(code: str) -> set[str]:
    """Modules loaded by a fresh interpreter that ran ``code``."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code += "\nimport sys\nprint('\\n'.join(sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return set(out.stdout.split())


def test_predict_loads_no_gcode_lca_or_dataframe_code():
    cube = str(need_shared("corpus", "stl", "calibration_cube_nmgrl.stl"))
    loaded = _modules_after(
        "import contextlib, io\nfrom slicer_energy.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['predict', {cube!r}, '--json']) == 0\n"
    )
    assert "slicer_energy.fdm.predict" in loaded  # it did run the model
    assert not {m for m in loaded if m.startswith(HEAVY)}


def test_version_registers_no_command():
    loaded = _modules_after(
        "from slicer_energy import cli\ncli.build_parser(cli.commands_for(['--version']))"
    )
    assert not {m for m in loaded if m.startswith(("slicer_energy.commands.", "numpy"))}
