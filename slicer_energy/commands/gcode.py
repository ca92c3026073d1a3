"""``slicer-energy gcode FILE``: print time and energy of a G-code file."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..errors import GcodeError
from ..estimate import J_PER_KWH
from ..gcode.analyze import MODES, analyze_file
from ..machine import load_machine
from ._output import print_json, print_table
from ._parser import add_command

HELP = "print time and energy of a G-code file"
DESCRIPTION = (
    "Plan every move of a G-code file the way the printer's firmware does, add heat-up "
    "waits from the heater model, and integrate wall energy (heaters, electronics, "
    "steppers, fans)."
)

EPILOG = """\
examples:
  slicer-energy gcode part.gcode --printer prusa-mk3s
  slicer-energy gcode part.gcode.gz --printer ender3-v2 --printer-config printer.cfg --json
  slicer-energy gcode part.gcode --printer prusa-mk3s --mode prusa   # PrusaSlicer 2.5's estimate
  slicer-energy gcode part.gcode --printer prusa-mk3s --timeline t.csv --plot t.png

modes: 'marlin' plans like Marlin 2 (finite block buffer, classic jerk or junction deviation),
'klipper' like Klipper's look-ahead (junction deviation from square_corner_velocity,
minimum_cruise_ratio), 'prusa' reproduces PrusaSlicer 2.5's estimator (motion only, 0 s for
waits). time_s adds heater waits (M109/M190 from the heater model), G4 dwells, homing and
bed levelling to the planned motion time (print_time_s).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "gcode", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("file", help="G-code file (.gcode or .gcode.gz)")
    p.add_argument(
        "--printer",
        "--profile",
        dest="printer",
        default="prusa-mk3s",
        help="machine profile name in hardware/fdm/ or a .toml path, e.g. a calibrated profile "
        "from `slicer-energy calibrate` (default: %(default)s)",
    )
    p.add_argument(
        "--printer-config",
        metavar="PRINTER_CFG",
        help="Klipper printer.cfg: use its [printer]/[extruder] limits and plan like Klipper",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        help="planner (default: the profile's firmware, or klipper with --printer-config)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeline", metavar="CSV", help="write the time/temperature/power timeline")
    p.add_argument("--plot", metavar="PNG", help="plot power and temperatures over time")


def run(args: argparse.Namespace) -> int:
    machine = load_machine(args.printer)
    mode = args.mode
    if args.printer_config:
        from ..gcode.klipper_config import machine_from_klipper_config

        machine = machine_from_klipper_config(args.printer_config, machine)
        mode = mode or "klipper"
    want_rows = bool(args.timeline or args.plot)
    res = analyze_file(args.file, machine, mode=mode, keep_rows=False, timeline=want_rows)
    est = res.to_estimate(machine)
    if args.timeline:
        _write_csv(Path(args.timeline), res)
    if args.plot:
        _plot(Path(args.plot), res)
    for w in res.warnings:  # on stderr, so that --json stays parseable
        print(f"slicer-energy: warning: {w}", file=sys.stderr)
    if args.json:
        d = {
            "file": res.path,
            "printer": machine.name,
            "mode": res.mode,
            "time_s": res.time_s,
            "print_time_s": res.print_time_s,
            "slicer_estimate_s": res.slicer_estimate_s,
            "energy_kwh": res.energy_j / J_PER_KWH,
            "filament_mm": res.filament_mm,
            "filament_g": est.material_g,
            "by_feature": res.time_by_feature_s,
            "by_phase": res.time_by_phase_s,
            "energy_by_component_kwh": {
                k: v / J_PER_KWH for k, v in res.energy_by_component_j.items()
            },
            "lines": res.n_lines,
            "moves": res.n_moves,
            "unknown_commands": res.unknown_commands,
            "warnings": res.warnings,
            "estimate": est.to_dict(),
        }
        print_json(d)
        return 0
    print(
        f"{res.path}: {res.n_lines} lines, {res.n_moves} moves, planner '{res.mode}', "
        f"printer {machine.name}"
    )
    rows = [
        ("total time", _hms(res.time_s)),
        ("motion (print) time", _hms(res.print_time_s)),
    ]
    if res.slicer_estimate_s is not None:
        rows.append(("slicer's estimate", _hms(res.slicer_estimate_s)))
    rows += [
        ("energy", f"{res.energy_j / J_PER_KWH:.4f} kWh"),
        ("filament", f"{res.filament_mm / 1000:.2f} m ({est.material_g:.1f} g)"),
    ]
    print_table(rows)
    print()
    print_table(
        [
            (k, f"{v:.0f}", f"{100 * v / max(res.print_time_s, 1e-9):.1f}")
            for k, v in sorted(res.time_by_feature_s.items(), key=lambda kv: -kv[1])
        ],
        header=("feature", "seconds", "% of motion"),
    )
    print()
    print_table(
        [(k, f"{v / J_PER_KWH * 1000:.1f}") for k, v in res.energy_by_component_j.items()],
        header=("component", "Wh"),
    )
    return 0


def _hms(s: float) -> str:
    s_int = int(round(s))
    return f"{s_int // 3600}h {s_int % 3600 // 60:02d}m {s_int % 60:02d}s ({s:.0f} s)"


def _write_csv(path: Path, res) -> None:
    cols = [
        "t0_s",
        "t1_s",
        "kind",
        "layer",
        "z_mm",
        "hotend_set_c",
        "hotend_c",
        "bed_set_c",
        "bed_c",
        "fan",
        "power_w",
        "energy_j",
    ]
    try:
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in res.timeline:
                w.writerow(
                    [
                        f"{r.t0_s:.3f}",
                        f"{r.t1_s:.3f}",
                        r.kind,
                        r.layer,
                        f"{r.z_mm:.3f}",
                        f"{r.hotend_set_c:.1f}",
                        f"{r.hotend_c:.2f}",
                        f"{r.bed_set_c:.1f}",
                        f"{r.bed_c:.2f}",
                        f"{r.fan:.3f}",
                        f"{r.power_w:.2f}",
                        f"{r.energy_j:.2f}",
                    ]
                )
    except OSError as exc:
        raise GcodeError(f"{path}: cannot write timeline: {exc}") from None


def _plot(path: Path, res) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r.t0_s / 60 for r in res.timeline]
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    ax1.step(t, [r.power_w for r in res.timeline], where="post", lw=0.8)
    ax1.set_ylabel("wall power (W, interval mean)")
    ax1.set_title(
        f"{Path(res.path).name}: {res.energy_j / J_PER_KWH:.3f} kWh, "
        f"{res.time_s / 60:.0f} min ({res.mode} planner)"
    )
    ax2.plot(t, [r.hotend_c for r in res.timeline], label="hotend (model)")
    ax2.plot(t, [r.bed_c for r in res.timeline], label="bed (model)")
    ax2.step(
        t, [r.hotend_set_c for r in res.timeline], where="post", ls="--", lw=0.7, label="hotend set"
    )
    ax2.step(t, [r.bed_set_c for r in res.timeline], where="post", ls="--", lw=0.7, label="bed set")
    ax2.set_xlabel("time (min)")
    ax2.set_ylabel("°C")
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise GcodeError(f"{path}: cannot write plot: {exc}") from None
    finally:
        plt.close(fig)
