"""Klipper ``klippy.log`` reader: its once-a-second ``Stats`` lines carry each heater's target,
temperature and duty (``pwm``, already limited by ``max_power``); :mod:`..klipper` fits them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import CalibrationError

_STATS = re.compile(r"^Stats (\d+(?:\.\d+)?):(.*)$")
_HEATER = re.compile(r"(heater_bed|extruder\d*): target=([\d.]+) temp=([\d.\-]+) pwm=([\d.]+)")


@dataclass
class HeaterLog:
    heater: str
    t_s: np.ndarray
    target_c: np.ndarray
    temp_c: np.ndarray
    pwm: np.ndarray
    session: np.ndarray  # restart counter (the clock restarts with Klipper)


def read_klippy_stats(path: str | Path) -> dict[str, HeaterLog]:
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{path}: Klipper log not found")
    rows: dict[str, list[tuple[float, float, float, float, int]]] = {}
    session, last_t = 0, -1.0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _STATS.match(line)
            if not m:
                continue
            t = float(m.group(1))
            if t < last_t:
                session += 1
            last_t = t
            for name, tgt, temp, pwm in _HEATER.findall(m.group(2)):
                rows.setdefault(name, []).append((t, float(tgt), float(temp), float(pwm), session))
    if not rows:
        raise CalibrationError(f"{path}: no 'Stats ...: heater_bed/extruder: target= temp= pwm='")
    out = {}
    for name, r in rows.items():
        a = np.array(r)
        out[name] = HeaterLog(name, a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4].astype(int))
    return out
