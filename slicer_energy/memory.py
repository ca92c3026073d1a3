"""How much memory a voxel grid may take, decided before it is allocated.

A grid's size follows from the part's bounding box and the pitch, so it can be known
before NumPy is asked for it: a 20 m part or a 1 nm pitch is refused in one line instead
of ending in an ``_ArrayMemoryError`` (or swapping the machine to a halt). The budget is
half the memory the kernel reports available (``MemAvailable`` in ``/proc/meminfo``; the
``sysconf`` page counts elsewhere) but at least 1 GiB, or what the user set with
``--max-memory GB`` or the environment variable :data:`ENV` (batch workers inherit it).
"""

from __future__ import annotations

import math
import os

from .errors import SettingsError

ENV = "SLICER_ENERGY_MAX_MEMORY_GB"
GIB = 2**30
# Where the available memory cannot be read at all.
FALLBACK_BUDGET_BYTES = 8 * GIB
# Never less by default: a busy machine still runs ordinary parts (a phone case needs
# 0.3 GB); the guard is for grids orders of magnitude too big.
MIN_BUDGET_BYTES = 1 * GIB


def available_bytes() -> int | None:
    """Memory available to a new allocation without swapping, or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return int(os.sysconf(pages)) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            continue
    return None


def memory_budget(max_memory_gb: float | None = None) -> tuple[float, str]:
    """Bytes a grid may take, and where that figure comes from (for messages)."""
    if max_memory_gb is not None:
        return max_memory_gb * GIB, f"--max-memory {max_memory_gb:g}"
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            gb = float(env)
        except ValueError:
            gb = math.nan
        if not (math.isfinite(gb) and gb > 0):
            raise SettingsError(f"${ENV} = {env!r}: expected a positive number of GiB")
        return gb * GIB, f"${ENV} = {env}"
    avail = available_bytes()
    if avail is None:
        return FALLBACK_BUDGET_BYTES, "the default (available memory unknown)"
    if avail / 2 < MIN_BUDGET_BYTES:
        return MIN_BUDGET_BYTES, "1 GiB: less than 2 GiB is available now"
    return avail / 2, "half the available memory"


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; binary units, as the kernel and NumPy report them."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.3g} {units[i]}"
