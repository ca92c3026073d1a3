"""argparse ``type=`` functions for numbers that must be finite and in range.

argparse turns the ``ValueError`` into its usual one-line usage error (exit 2) naming the
option, so ``--baud 0`` or ``--tail nan`` never reach the code that would misbehave on them.
"""

from __future__ import annotations

import argparse
import math


def _finite(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return x


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds between reads, time limits)."""
    x = _finite(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return x


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (a tail of 0 seconds is fine, a negative one is not)."""
    x = _finite(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return x


def positive_int(text: str) -> int:
    """A whole number > 0 (baud rates, counts)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return n
