"""Shared output helpers for commands: JSON vs human tables."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any


def print_json(obj: Any) -> None:
    """Strict JSON on stdout: NaN and Infinity are not JSON, and a consumer that reads
    them gets garbage or fails. Inputs are validated where they are read, so a
    non-finite number here is a bug: raise, naming its key, and print nothing."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, default=float, allow_nan=False)
    except ValueError:
        raise ValueError(
            f"bug: non-finite number at {_non_finite_key(obj) or '?'} in the JSON output"
        ) from None
    sys.stdout.write(text + "\n")


def known(x: float | None) -> float | None:
    """A statistic that could not be estimated (NaN, e.g. a standard error from one sample)
    is ``null`` in JSON, not a number."""
    return None if x is None or not math.isfinite(x) else x


def _non_finite_key(obj: Any, path: str = "") -> str | None:
    """Dotted path of the first NaN/Infinity in nested dicts and lists."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif isinstance(obj, str):
        return None
    else:
        try:
            return None if math.isfinite(float(obj)) else path or "(top level)"
        except (TypeError, ValueError):
            return None
    for k, v in items:
        found = _non_finite_key(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def hms(seconds: float) -> str:
    """A duration as every table shows it: ``h:mm:ss``."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> None:
    """Left-aligned text table; floats are printed as given (format them before)."""
    cells = [list(map(str, r)) for r in rows]
    if header:
        cells.insert(0, list(header))
    if not cells:
        return
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(map(len, cells)))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
        if header and n == 0:
            print("  ".join("-" * w for w in widths))
