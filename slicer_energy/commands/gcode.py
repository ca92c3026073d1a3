"""``slicer-energy gcode FILE``: print time and energy of a G-code file."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from ..errors import GcodeError
from ..estimate import J_PER_KWH
from ..gcode.analyze import MODES, analyze_file
from ..machine import load_machine
from ..record import record
from ._costs import add_cost_options, costs_from_args, default_printer
from ._output import hms, print_json
from ._parser import add_command
from .predict import print_fdm_record

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
  slicer-energy gcode part.gcode --printer prusa-mk3s --timeline t.csv --plots plots/
  slicer-energy gcode part.gcode --price-per-kwh 0.30 --filament-price-per-kg 20 --grid DE

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
        help="machine: a name or alias ('slicer-energy profiles' lists them, your calibrated "
        "profiles included), a .toml, a slicer .ini/.json/.3mf or a Klipper printer.cfg "
        "(default: the config file's printer, else prusa-mk3s)",
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
    add_cost_options(p)
    p.add_argument(
        "--json", action="store_true", help="print one JSON record (schema: record-1.json)"
    )
    p.add_argument(
        "--timeline", metavar="FILE.csv", help="write the time/temperature/power timeline to FILE"
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="write the power and temperature plot into folder DIR (<file>-timeline.png)",
    )


def run(args: argparse.Namespace) -> int:
    costs = costs_from_args(args)
    machine = load_machine(default_printer(args.printer, "prusa-mk3s"))
    mode = args.mode
    if args.printer_config:
        from ..gcode.klipper_config import machine_from_klipper_config

        machine = machine_from_klipper_config(args.printer_config, machine)
        mode = mode or "klipper"
    want_rows = bool(args.timeline or args.plots)
    res = analyze_file(args.file, machine, mode=mode, keep_rows=False, timeline=want_rows)
    rec = record(res.to_estimate(machine), costs, gcode=res, source=args.file)
    if args.timeline:
        _write_csv(Path(args.timeline), res)
    if args.plots:
        _plot(Path(args.plots), res)
    for w in res.warnings:  # on stderr, so that --json stays parseable
        print(f"slicer-energy: warning: {w}", file=sys.stderr)
    if args.json:
        print_json(rec)
        return 0
    slicer = res.slicer_estimate_s
    print(
        f"{res.path}: {res.n_lines} lines, {res.n_moves} moves, planner '{res.mode}'"
        + ("" if slicer is None else f", the slicer's estimate {hms(slicer)}")
    )
    print_fdm_record(rec)
    return 0


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


HOTEND_COLOUR, BED_COLOUR, POWER_COLOUR = "#d62728", "#1f77b4", "#555555"


def timeline_figure(plt: Any, res: Any) -> Any:
    """Wall power (top) and the modelled temperatures with their set points (bottom): each
    temperature from the printer's state at t = 0 to its state at the end, its set point
    dashed in the same colour, so a legend entry and its line cannot disagree."""
    rows = res.timeline
    t = [r.t0_s / 60 for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    ax1.step(t, [r.power_w for r in rows], where="post", lw=0.8, color=POWER_COLOUR)
    ax1.set_ylabel("wall power (W, interval mean)")
    ax1.set_title(
        f"{Path(res.path).name}: {res.energy_j / J_PER_KWH:.3f} kWh, "
        f"{res.time_s / 60:.0f} min ({res.mode} planner)"
    )
    t_end = [*t, rows[-1].t1_s / 60] if rows else t
    for name, colour, start, mean, set_c in (
        ("hotend", HOTEND_COLOUR, "hotend_start_c", "hotend_c", "hotend_set_c"),
        ("bed", BED_COLOUR, "bed_start_c", "bed_c", "bed_set_c"),
    ):
        # the state at each interval's start, then the last one's end (2 x mean - start)
        temps = [getattr(r, start) for r in rows]
        if rows:
            temps.append(2.0 * getattr(rows[-1], mean) - getattr(rows[-1], start))
        ax2.plot(t_end, temps, color=colour, lw=1.0, label=f"{name} (model)")
        ax2.step(t, [getattr(r, set_c) for r in rows], where="post", ls="--", lw=0.7,
                 color=colour, label=f"{name} set")  # fmt: skip
    ax2.set_xlabel("time (min)")
    ax2.set_ylabel("°C")
    ax2.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _plot(folder: Path, res) -> None:
    """``<gcode stem>-timeline.png`` in ``folder`` (made if missing), like every --plots DIR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = timeline_figure(plt, res)
    name = Path(res.path).name.removesuffix(".gz").removesuffix(".gcode")
    path = folder / f"{name}-timeline.png"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise GcodeError(f"{path}: cannot write plot: {exc}") from None
    finally:
        plt.close(fig)
