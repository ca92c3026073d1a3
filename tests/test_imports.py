"""Every module of ``slicer_energy`` imports on its own, first, in a fresh interpreter.

A module that imports only because another one was imported before it (an import cycle kept
alive by import order, a name set up as a side effect) fails here. Modules are found on disk
(``*.py`` under the package), not with ``pkgutil.walk_packages``, which skips folders without
an ``__init__.py`` (``gcode/`` is one). Two interpreters run at a time; a module whose import
needs an optional dependency that is not installed (CuPy, Brightway, Open3D) is skipped with
that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

import slicer_energy

PACKAGE_DIR = Path(slicer_energy.__file__).resolve().parent
OPTIONAL = {"cupy", "cupyx", "bw2data", "bw2calc", "bw2io", "open3d"}  # extras in pyproject
WORKERS = 2
TIMEOUT_S = 120

# Runs in the child: import the module; on a missing third-party package report its name.
_CHILD = """
import importlib, json, sys, traceback
name = sys.argv[1]
try:
    importlib.import_module(name)
except ModuleNotFoundError as exc:
    missing = (exc.name or "").split(".")[0]
    if missing and missing != "slicer_energy":
        print(json.dumps({"missing": missing}))
        sys.exit(0)
    traceback.print_exc()
    sys.exit(1)
except BaseException:
    traceback.print_exc()
    sys.exit(1)
print(json.dumps({"ok": True}))
"""


def _modules() -> list[str]:
    """Dotted names of every module and package under ``slicer_energy``."""
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULES = _modules()


def _import_alone(name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-c", _CHILD, name],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )


@cache
def _results() -> dict[str, subprocess.CompletedProcess]:
    """All modules imported once, ``WORKERS`` interpreters at a time (the first test pays)."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(MODULES, pool.map(_import_alone, MODULES), strict=True))


def test_modules_found():
    assert "slicer_energy.gcode.parse" in MODULES  # a folder without __init__.py is walked
    assert "slicer_energy.cli" in MODULES and len(MODULES) > 50


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", MODULES)
def test_module_imports_alone(name):
    res = _results()[name]
    assert res.returncode == 0, f"import {name} in a fresh interpreter failed:\n{res.stderr}"
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if "missing" in out:
        if out["missing"] in OPTIONAL:
            pytest.skip(f"{name} needs the optional package {out['missing']!r}, not installed")
        pytest.fail(f"{name} needs {out['missing']!r}, which is not installed (not optional)")
    assert out == {"ok": True}
