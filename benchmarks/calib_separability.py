"""docs/calibration.md figures "Steppers standing vs moving, filament heating": fit error
per printer seed.

The calibration print of ``tests/calib/test_calib_separability.py`` (a dwell after homing with the
fan off, one after the fan comes on) on the virtual printer, fitted with the PSU efficiency
given; prints each separated parameter's error against the hidden truth's first-order
equivalents (the truth file's ``[effective]``; the simulator's own physics is richer).

    python benchmarks/calib_separability.py
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from slicer_energy.calib.fit import fit_sessions
from slicer_energy.calib.inputs.session import load_session
from slicer_energy.machine import load_machine
from slicer_energy.rig.sim.demo import run_demo
from slicer_energy.rig.sim.physics import PLA_CP_J_PER_GK
from slicer_energy.rig.sim.printer import demo_gcode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def separating_print() -> list[str]:
    lines = demo_gcode(layers=6, size_mm=25.0)
    i = lines.index("G28")
    lines = [*lines[: i + 1], "G4 S60", *lines[i + 1 :]]  # steppers held, fan off
    j = lines.index("M106 S255")
    return [*lines[: j + 1], "G4 S60", *lines[j + 1 :]]  # steppers held, fan on


def main() -> None:
    for ps in (3, 1, 2):
        out = Path(tempfile.mkdtemp(prefix="separability-"))
        r = run_demo(out, printer_seed=ps, seed=13, scale=math.inf, tail_s=300,
                     gcode_lines=separating_print())  # fmt: skip
        truth = tomllib.loads(r.truth_path.read_text())["effective"]
        el = truth["electrical"]
        fit = fit_sessions([load_session(r.session.folder)], load_machine("ender3-v2"),
                           fix={"electrical.psu_efficiency": el["psu_efficiency"]})  # fmt: skip

        def err(key: str, true: float, fit=fit) -> float:
            return (fit.value(key) / true - 1) * 100

        hot = max(abs(err(f"hotend.{k}", truth["hotend"][k]))
                  for k in ("p_max_w", "r_k_per_w", "c_j_per_k"))  # fmt: skip
        print(
            f"printer seed {ps}: enabled "
            f"{err('electrical.p_steppers_enabled_w', el['p_steppers_enabled_w']):+.1f} %, "
            f"moving {err('electrical.p_steppers_moving_w', el['p_steppers_moving_w']):+.1f} %, "
            f"c_p {err('filament.cp_j_per_gk', PLA_CP_J_PER_GK):+.1f} %, "
            f"hotend P/R/C within {hot:.1f} %"
        )


if __name__ == "__main__":
    main()
