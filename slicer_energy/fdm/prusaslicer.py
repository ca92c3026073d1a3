"""Run PrusaSlicer 2.5's headless CLI as the reference for the FDM model's accuracy.

Used by the accuracy tests and ``benchmarks/fdm_accuracy.py``: slice an STL with one of
the flattened MK3S profiles (``shared/reference/prusaslicer/*.ini``) and read back the
estimate PrusaSlicer writes into the G-code footer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SlicerEnergyError

_DHMS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_TIME = re.compile(r"^; estimated printing time \(normal mode\) = (.+)$", re.M)
_FIL_MM = re.compile(r"^; filament used \[mm\] = ([\d.]+)", re.M)
_FIL_G = re.compile(r"^; filament used \[g\] = ([\d.]+)", re.M)


@dataclass
class SliceResult:
    gcode: Path
    time_s: float  # '; estimated printing time (normal mode)' (truncated seconds)
    filament_mm: float
    filament_g: float
    wall_s: float  # how long PrusaSlicer took to slice


def executable() -> str | None:
    """Path of ``prusa-slicer`` (Debian package) or None."""
    return shutil.which("prusa-slicer") or shutil.which("PrusaSlicer")


def parse_dhms(text: str) -> float:
    """'1d 2h 3m 4s' → seconds (PrusaSlicer's get_time_dhms format)."""
    total = 0
    for tok in text.split():
        if tok[-1] not in _DHMS or not tok[:-1].isdigit():
            raise ValueError(f"not a PrusaSlicer duration: {text!r}")
        total += int(tok[:-1]) * _DHMS[tok[-1]]
    return float(total)


def read_footer(gcode: Path) -> tuple[float, float, float]:
    """(time_s, filament_mm, filament_g) from a PrusaSlicer G-code file's footer."""
    with open(gcode, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 600_000))
        tail = fh.read().decode("utf-8", "replace")
    t, mm, g = _TIME.search(tail), _FIL_MM.search(tail), _FIL_G.search(tail)
    if not (t and mm and g):
        raise SlicerEnergyError(f"{gcode}: no PrusaSlicer estimate in the footer")
    return parse_dhms(t.group(1)), float(mm.group(1)), float(g.group(1))


def slice_stl(
    stl: Path,
    ini: Path,
    out: Path,
    supports: bool = False,
    timeout_s: float = 600,
    duplicate: int = 1,
) -> SliceResult:
    """Slice ``stl`` with ``ini`` into ``out`` and return PrusaSlicer's own estimate
    (``duplicate``: that many copies, arranged by PrusaSlicer on one plate)."""
    exe = executable()
    if exe is None:
        raise SlicerEnergyError(
            "prusa-slicer is not installed (Debian: apt-get install prusa-slicer)"
        )
    cmd = [exe, "--export-gcode", "--load", str(ini)]
    if supports:
        cmd.append("--support-material")
    if duplicate > 1:
        cmd += ["--duplicate", str(duplicate)]
    cmd += ["-o", str(out), str(stl)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        raise SlicerEnergyError(
            f"prusa-slicer failed on {stl} (exit {proc.returncode}): {proc.stderr[-500:]}"
        )
    t, mm, g = read_footer(out)
    return SliceResult(out, t, mm, g, wall)
