"""Numba kernels for the hot loops of large files (optional compiled fast path).

Each kernel is a byte-for-byte or block-for-block transcription of a readable
reference that stays in the package and is what small files use:

* :func:`scan_block` does the line classification and number parsing of
  :func:`.fastparse._scan_numpy` in one pass over the bytes instead of ~40 NumPy
  passes; anything it is not sure about makes it give up (status != 0) and the
  caller runs the NumPy reference on that block, so its results are the reference's.
* ``marlin_jerk`` is :meth:`.planner.FirmwarePlanner._marlin_jerk` (classic-jerk
  junction speeds) as a loop over blocks instead of ~100 NumPy passes;
* ``prusa_feed`` is :class:`.prusa_planner.PrusaTimeMachine` (block set-up, 64/256
  batching, forward and reverse passes, trapezoids) with its queue in arrays.

The planners use the same floating-point operations in the same order as their
references (Python's ``min``/``max`` spelled out), so they give the same doubles.
``tests/gcode/test_gcode_jit.py`` checks both paths give the same per-move times on corpus
files. The kernels live in :mod:`._kernels`, which imports numba, so numba is loaded
only when a kernel is first needed (:func:`kernel`); compiled code is cached on disk
(``cache=True``), so only the first large file after an install pays the compile
time. Nothing here is rebound or mutated once set up, so batch threads may share it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from types import ModuleType

import numpy as np


@functools.cache
def _numba() -> ModuleType | None:
    """numba, or None when it is not importable or disabled (SLICER_ENERGY_JIT=0)."""
    if os.environ.get("SLICER_ENERGY_JIT", "").strip() == "0":
        return None
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return numba


def available() -> bool:
    """True when the compiled path may be used (numba importable, not disabled)."""
    return _numba() is not None


# Files at least this large (bytes on disk, uncompressed) take the compiled path by
# default. Importing numba and loading the cached kernels costs about 1 CPU-second
# per process; the compiled path saves about 2.7 us per line for the firmware
# planners (break-even near 380 000 lines, 10 MB) and about 17 us per line for the
# PrusaSlicer emulation (near 60 000 lines, 1.6 MB). Measured with
# benchmarks/gcode.py; the first large file after an install also compiles the
# kernels once (about 15 CPU-seconds), then they are cached on disk.
JIT_MIN_BYTES = 12 << 20
JIT_MIN_BYTES_PRUSA = 2 << 20


def want_jit(size_bytes: int, jit: bool | None, min_bytes: int = JIT_MIN_BYTES) -> bool:
    """Resolve a ``jit`` argument (None: decide by file size; env SLICER_ENERGY_JIT=1/0 forces)."""
    env = os.environ.get("SLICER_ENERGY_JIT", "").strip()
    if jit is None:
        jit = True if env == "1" else (False if env == "0" else size_bytes >= min_bytes)
    return bool(jit) and available()


def kernel(name: str) -> Callable:
    """The compiled kernel ``name`` of :mod:`._kernels` (``scan_block``, ``marlin_jerk``,
    ``prusa_feed``); numba compiles it, or loads it from the disk cache, on first call."""
    from . import _kernels  # imports numba; the import lock serialises threads

    return getattr(_kernels, name)


# first three characters after ';' of the comments words.apply_comment acts on
_CODES = np.array(
    [
        (ord(w[0]) << 16) | (ord(w[1]) << 8) | ord(w[2])
        for w in ("TYP", "LAY", "WIP", "COL", "PAU", "Gen", "Sli", "FLA", "TIM")
    ],
    np.int64,
)
_POW10 = 10.0 ** np.arange(23)


def scan_block(a: np.ndarray) -> tuple:
    """The compiled line scan of a block of bytes (see ``_kernels.scan_block``)."""
    return kernel("scan_block")(a, _CODES, _POW10)
