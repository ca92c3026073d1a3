"""docs/calibration.md table "Recovery of hidden parameters": its calibration commands, run.

Runs ``rig demo`` twice on the virtual printer (a calibration session with a cool-down tail,
and a held-out print), ``calibrate`` on the first with the second held out, and prints a
Markdown table of each hidden parameter (from the ``*.sim_truth.toml`` the simulator writes;
calibration never reads it) beside its fitted value. The simulated clock follows the
printer's work, so the table is the same on an idle or a loaded machine.

The simulator's physics is richer than the first-order model calibration fits (two-node
heaters with convective + radiative loss and sensor lag, heater power that changes with
temperature, a supply whose efficiency changes with load: ``rig/sim/truth.py``), so "truth"
is its first-order equivalent at the print's operating point (the truth file's
``[effective]``: P at full duty at the set point, R = ΔT / loss at the set point, C the block's
capacity, η at the print phase's DC load); the holding rows compare the power each model
needs to hold the set point.

    python benchmarks/calib_recovery.py [--printer-seed 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from slicer_energy.rig.sim.physics import PLA_CP_J_PER_GK

ROWS = (  # (label, fitted key, truth section, truth key)
    ("hotend P_max W", "hotend.p_max_w", "hotend", "p_max_w"),
    ("hotend R K/W", "hotend.r_k_per_w", "hotend", "r_k_per_w"),
    ("hotend C J/K", "hotend.c_j_per_k", "hotend", "c_j_per_k"),
    ("bed P_max W", "bed.p_max_w", "bed", "p_max_w"),
    ("bed R K/W", "bed.r_k_per_w", "bed", "r_k_per_w"),
    ("bed C J/K", "bed.c_j_per_k", "bed", "c_j_per_k"),
    ("electronics W", "electrical.p_electronics_w", "electrical", "p_electronics_w"),
    ("part fan W", "electrical.p_fans_w", "electrical", "p_fans_w"),
)


def _cli(*args: str) -> str:
    cmd = [sys.executable, "-m", "slicer_energy.cli", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _pct(fit: float, truth: float) -> str:
    return f"{(fit / truth - 1) * 100:+.1f} %".replace("-", "−")


def _g(x: float) -> str:
    return f"{x:.4g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--printer-seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="keep the sessions here")
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="calib-recovery-"))
    s = str(a.printer_seed)
    for sub, seed, tail in (("c", "1", "300"), ("h", "2", "20")):  # calibration, held out
        _cli("rig", "demo", "--out", str(out / sub), "--printer-seed", s, "--seed", seed,
             "--scale", "inf", "--tail", tail)  # fmt: skip
    (cal,) = (p for p in (out / "c").iterdir() if p.is_dir())
    (hold,) = (p for p in (out / "h").iterdir() if p.is_dir())
    truth_file = tomllib.loads(next((out / "c").glob("*.sim_truth.toml")).read_text())
    truth = truth_file["effective"]
    res = json.loads(
        _cli(
            "calibrate",
            str(cal),
            "--holdout",
            str(hold),
            "--base",
            "ender3-v2",
            "--out",
            str(out / "profile.toml"),
            "--json",
        )
    )
    fitted = res["params"]

    print("| parameter | truth | fitted | error |")
    print("|---|---|---|---|")
    for label, key, sec, tkey in ROWS:
        f, t = fitted[key], truth[sec][tkey]
        print(
            f"| {label} | {_g(t)} | {_g(f['value'])} ± {f['stderr']:.2g} | {_pct(f['value'], t)} |"
        )
    te = truth["electrical"]
    t_st = te["p_steppers_enabled_w"] + te["p_steppers_moving_w"]
    f_en, f_mv = fitted["electrical.p_steppers_enabled_w"], fitted["electrical.p_steppers_moving_w"]
    split = "" if f_mv["identified"] else " (split not identified: moving kept its prior)"
    print(
        f"| steppers enabled + moving W | {_g(t_st)} | {_g(f_en['value'] + f_mv['value'])} | "
        f"{_pct(f_en['value'] + f_mv['value'], t_st)}{split} |"
    )
    cp = fitted["filament.cp_j_per_gk"]
    print(
        f"| filament c_p J/(g·K) | {_g(PLA_CP_J_PER_GK)} | {_g(cp['value'])} ± "
        f"{cp['stderr']:.2g} | {_pct(cp['value'], PLA_CP_J_PER_GK)} |"
    )
    eta = fitted["electrical.psu_efficiency"]
    note = "(prior, not identified)" if not eta["identified"] else f"± {eta['stderr']:.2g}"
    print(
        f"| PSU η | {_g(te['psu_efficiency'])} | {_g(eta['value'])} {note} | "
        f"{'' if not eta['identified'] else _pct(eta['value'], te['psu_efficiency'])} |"
    )
    for h, t_set in (("hotend", 210.0), ("bed", 60.0)):  # the demo print's set points
        th = truth[h]
        t_hold = (t_set - th["t_amb_c"]) / th["r_k_per_w"] / te["psu_efficiency"]
        f_amb, f_r = fitted[f"{h}.t_amb_c"]["value"], fitted[f"{h}.r_k_per_w"]["value"]
        f_hold = (t_set - f_amb) / f_r / eta["value"]
        print(
            f"| {h} holding {t_set:.0f} °C, wall W | {_g(t_hold)} | {_g(f_hold)} "
            f"(fitted ambient {f_amb:.1f} °C) | "
            f"{_pct(f_hold, t_hold)} |"
        )
    (h,) = res["holdout"]
    print(
        f"| held-out print energy | {h['energy_kwh_measured'] * 1000:.2f} Wh measured | "
        f"{h['energy_kwh_predicted'] * 1000:.2f} Wh | {_pct(1 + h['energy_error'], 1)} |"
    )
    print(
        f"| held-out print time | {h['time_s_measured']:.1f} s | "
        f"{h['time_s_predicted']:.1f} s | "
        f"{_pct(h['time_s_predicted'], h['time_s_measured'])} |"
    )
    fit = res["fit"]
    print()
    print(
        f"R² {fit['r2']:.4f}, RMS {fit['rms_w']:.1f} W over {fit['n_power']} readings; "
        f"hotend {fit['rms_temp_c']['hotend']:.3f} °C, bed {fit['rms_temp_c']['bed']:.3f} °C; "
        f"time scale {fit['time_scale']:.3f}."
    )


if __name__ == "__main__":
    main()
