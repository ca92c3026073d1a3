"""The array module: CuPy where a CUDA device exists, NumPy otherwise.

One implementation of every array algorithm is written against ``xp``; this
module only decides which module that is (DESIGN.md, "The GPU/CPU rule").
``SLICER_ENERGY_BACKEND=auto|numpy|cupy`` overrides the automatic choice.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from .errors import BackendError

ENV_VAR = "SLICER_ENERGY_BACKEND"
CHOICES = ("auto", "numpy", "cupy")


def cupy_available() -> bool:
    """True when CuPy imports and at least one CUDA device answers."""
    try:
        import cupy  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError, driver missing
        return False


def get_xp(name: str | None = None) -> ModuleType:
    """Return the array module for ``name`` (or ``$SLICER_ENERGY_BACKEND``, default auto).

    ``auto`` picks CuPy when a CUDA device is present, else NumPy; ``cupy``
    where there is none raises :class:`BackendError` rather than falling back
    silently, so a benchmark never reports CPU numbers as GPU ones.
    """
    choice = (name or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if choice not in CHOICES:
        raise BackendError(
            f"unknown backend {choice!r} (from {'argument' if name else ENV_VAR}); "
            f"choose one of {', '.join(CHOICES)}"
        )
    if choice == "numpy":
        return np
    if cupy_available():
        import cupy

        return cupy
    if choice == "cupy":
        raise BackendError(
            "backend 'cupy' requested but CuPy is not importable or no CUDA device is present; "
            "install the 'gpu' extra (pip install 'slicer-energy[gpu]') on a machine with a GPU, "
            "or use --backend numpy"
        )
    return np


def array_module(*arrays: Any) -> ModuleType:
    """The module (NumPy or CuPy) that owns ``arrays``: functions take xp from their inputs."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array (no copy for NumPy input)."""
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def backend_name(xp: ModuleType) -> str:
    return "cupy" if xp.__name__.startswith("cupy") else "numpy"
