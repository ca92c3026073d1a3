"""argparse types for numeric options: finite, in range, or a one-line usage error.

``float("nan")`` and ``float("inf")`` parse, and a count like ``1e8`` would let a command
allocate for hours; these types refuse such values where argparse reads them, naming
the option and the accepted range.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str) -> float:
    """``text`` as a float; NaN (refused by every check below) when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def float_in(lo: float, hi: float) -> Callable[[str], float]:
    """A type accepting a finite float in [lo, hi]."""

    def parse(text: str) -> float:
        v = _number(text)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number in [{lo:g}, {hi:g}]")
        return v

    return parse


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = _number(text)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number > 0")
    return v


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (a tail of 0 seconds is fine, a negative one is not)."""
    v = _number(text)
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number >= 0")
    return v


def positive_int(text: str) -> int:
    """A whole number > 0 (baud rates, counts)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number > 0")
    return v


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """A type accepting a whole number in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a whole number in [{lo}, {hi}]"
            ) from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number in [{lo}, {hi}]")
        return v

    return parse


def add_max_memory(p: argparse.ArgumentParser) -> None:
    """The ``--max-memory GB`` option of the commands that voxelise a part."""
    p.add_argument(
        "--max-memory",
        type=positive_float,
        metavar="GB",
        help="memory the voxel grid may take, GiB (default: $SLICER_ENERGY_MAX_MEMORY_GB, "
        "else half the available memory); larger grids are refused before allocating",
    )
