"""``slicer-energy calibrate``: fit a printer's energy model from logged sessions and check
it on held-out prints."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CalibrationError
from ..machine import load_machine
from ..paths import safe_name
from ..profiles import calibrated_dir
from ._numbers import float_in
from ._output import known, print_json, print_table
from ._parser import add_command

if TYPE_CHECKING:
    from ..calib.inputs.session import Session

HELP = "fit heater, electronics, stepper, fan and PSU parameters from logged sessions"
DESCRIPTION = (
    "Align each session's serial log, temperatures and meter readings on one clock, fit "
    "the thermal/electrical model (bounded robust least squares, priors from the base "
    "profile), report uncertainties and which parameters the data determine, write a "
    "calibrated profile, and predict held-out prints from their G-code."
)

EPILOG = """\
examples:
  slicer-energy rig demo --out /tmp/rig --printer-seed 3 --seed 1 --scale 200 --tail 300
  slicer-energy rig demo --out /tmp/rig --printer-seed 3 --seed 2 --scale 200
  slicer-energy calibrate /tmp/rig/*-p3-s1 --holdout /tmp/rig/*-p3-s2 \\
      --base ender3-v2 --out my-printer.toml --plots /tmp/plots
  slicer-energy gcode part.gcode --profile my-printer.toml

Each SESSION is a folder written by `slicer-energy rig log` or `rig demo`
(firmware_logs/README.md). Record at least one session with a cool-down tail (--tail)
so the heaters' thermal resistance and capacity are determined. Parameters the sessions
cannot determine are reported as not identified and keep the base profile's value.
"""


# ---------------------------------------------- OctoPrint serial.log + smart-plug trace
OCTOPRINT_EPILOG = """\
OctoPrint + smart plug instead of a rig session:
  slicer-energy calibrate --octoprint-log ~/.octoprint/logs/serial.log \\
      --plug-csv history.csv --gcode benchy.gcode --base ender3-v2 --out my-printer.toml
  (serial.log: OctoPrint > Settings > Serial Connection > Log communication to serial.log;
  plug CSV: Home Assistant history download, Tasmota SENSOR JSON lines, Shelly em_data.csv /
  emdata data.csv, or any CSV with a time and a W column). The meter's clock offset is
  estimated from the heat-ups and printed; --clock-offset S skips the estimate.
"""


# load_octoprint_session's keyword -> the calibrate option that sets it
_OCTOPRINT_OPTIONS = {
    "job": "octoprint_job",
    "naive_tz": "octoprint_tz",
    "plug_tz": "plug_tz",
    "plug_format": "plug_format",
    "plug_unit": "plug_unit",
    "plug_entity": "plug_entity",
    "plug_start": "plug_start",
    "offset_s": "clock_offset",
    "max_offset_s": "max_offset",
}


def _add_octoprint_arguments(p: argparse.ArgumentParser) -> None:
    """The ``calibrate`` options for OctoPrint logs with smart-plug traces."""
    g = p.add_argument_group("OctoPrint serial.log + smart-plug trace (instead of a session)")
    g.add_argument(
        "--octoprint-log",
        action="append",
        default=[],
        metavar="serial.log",
        help="OctoPrint serial.log of a print (repeatable; pair each with --plug-csv)",
    )
    g.add_argument(
        "--plug-csv",
        action="append",
        default=[],
        metavar="FILE",
        help="smart-plug power export recorded during that print (format auto-detected)",
    )
    g.add_argument(
        "--gcode",
        action="append",
        default=[],
        metavar="FILE",
        help="the printed G-code (one per --octoprint-log, checked against the lines the log "
        "shows were sent, or one per --power-csv)",
    )
    g.add_argument(
        "--octoprint-job",
        type=int,
        default=None,
        metavar="N",
        help="which job of the log (1-based; default: the last completed one)",
    )
    g.add_argument(
        "--octoprint-tz",
        default=None,
        metavar="TZ",
        help="time zone of serial.log times (default: this computer's local zone)",
    )
    g.add_argument(
        "--plug-tz",
        default=None,
        metavar="TZ",
        help="zone for plug times written without one (local, UTC, +02:00, "
        "Europe/Berlin; default local)",
    )
    g.add_argument(
        "--plug-format",
        default="auto",
        choices=("auto", "tasmota", "home-assistant", "shelly-gen1", "shelly-gen2", "generic"),
        help="plug export format (default: detect)",
    )
    g.add_argument(
        "--plug-unit",
        default="auto",
        choices=("auto", "W", "kW", "w", "kw"),
        help="power unit when the file does not say (default: W, from the header)",
    )
    g.add_argument(
        "--plug-entity",
        default=None,
        metavar="ENTITY_ID",
        help="Home Assistant entity to use when the export holds several",
    )
    g.add_argument(
        "--plug-start",
        default=None,
        metavar="ISO_TIME",
        help="time of the first reading of an interval-only CSV",
    )
    g.add_argument(
        "--clock-offset",
        type=float,
        default=None,
        metavar="S",
        help="meter clock minus host clock in s (default: estimated)",
    )
    g.add_argument(
        "--max-offset",
        type=float,
        default=600.0,
        metavar="S",
        help="search the clock offset within ±S (default: %(default)s)",
    )


def _octoprint_sessions(
    args: argparse.Namespace, report: Callable[[str], None] | None = None
) -> list[Session]:
    """Sessions for each ``--octoprint-log``/``--plug-csv`` pair; ``report(line)`` gets the
    clock offset and any gaps of each."""
    from ..calib.inputs.octoprint import load_octoprint_session

    logs, plugs, gcodes = args.octoprint_log, args.plug_csv, args.gcode
    if len(logs) != len(plugs):
        raise CalibrationError(
            f"{len(logs)} --octoprint-log but {len(plugs)} --plug-csv; give one plug trace per log"
        )
    if gcodes and len(gcodes) != len(logs):
        raise CalibrationError(f"{len(gcodes)} --gcode for {len(logs)} --octoprint-log")
    out = []
    options = {key: getattr(args, option) for key, option in _OCTOPRINT_OPTIONS.items()}
    for i, (lg, pc) in enumerate(zip(logs, plugs, strict=True)):
        s, est = load_octoprint_session(
            lg,
            pc,
            gcode=gcodes[i] if gcodes else None,
            **options,
        )
        if report is not None:
            if est is not None:
                report(
                    f"clock: {pc}: meter − host {est.offset_s:+.1f} ± {est.stderr_s:.1f} s "
                    f"(R² {est.r2:.3f}, {est.n} readings)"
                )
            for note in s.meta["plug"]["notes"]:
                report(f"warning: {note}")
        out.append(s)
    return out


# ------------------------------------------- a plug's (or meter's) log + the G-code, nothing else
POWER_EPILOG = """\
smart plug or power meter + the G-code you printed (no host log needed):
  slicer-energy calibrate --power-csv benchy_plug.csv --gcode benchy.gcode --printer ender3-v2
  1. log the printer's power while it prints (Home Assistant: History > Download data;
     Tasmota SENSOR JSON lines; Shelly em_data.csv / emdata data.csv; or any CSV with a
     time or per-reading interval column and a W column), from before the heat-up to
     after the end;
  2. pass that export and the exact G-code file it printed. Several prints are fitted
     jointly: repeat --power-csv/--gcode in pairs, in the same order. Different parts or
     layer heights, or a print with the bed heater switched off, separate the heaters
     from the rest;
  3. say what differed from the G-code with --run-state, once per --power-csv in order,
     comma-separated: as-printed (default), bed-off, hotend-off (heater switched off by
     hand), hot-start (heaters already hot at the start), bed=NAME (a changed bed, e.g.
     bed=insulated: its own loss factor);
  4. --leave-one-out predicts each print from a fit to the others (the check that the
     profile predicts a print it has not seen). A meter between the power supply and the
     board (DC side) measures no supply loss: add --fix-psu-efficiency 1.
  Meter gaps, restarts and resets in the log are found from its power levels.
"""


def _add_trace_arguments(p: argparse.ArgumentParser) -> None:
    """The ``calibrate`` options for bare power logs with the printed G-code."""
    g = p.add_argument_group("smart plug or power meter log + the printed G-code")
    g.add_argument(
        "--power-csv",
        action="append",
        default=[],
        metavar="FILE",
        help="power log of one print (repeatable; pair each with --gcode, in order)",
    )
    g.add_argument(
        "--run-state",
        action="append",
        default=[],
        metavar="STATE",
        help="what differed from the G-code in that print: as-printed, bed-off, hotend-off, "
        "hot-start, bed=NAME (comma-separated; one per --power-csv, in order)",
    )
    g.add_argument(
        "--leave-one-out",
        action="store_true",
        help="also predict each print from a fit to the others",
    )


def _run_traces(args: argparse.Namespace) -> int:
    """``calibrate --power-csv … --gcode …``: the bare-trace fit, its profile, its check."""
    from ..calib.profile import write_trace_profile
    from ..calib.trace import fit_traces
    from ..calib.trace_runs import RunState, leave_one_out, load_runs, parse_run_state

    n = len(args.power_csv)
    if args.sessions or args.octoprint_log or args.holdout:
        raise CalibrationError(
            "--power-csv runs cannot be mixed with SESSION folders, --holdout or "
            "--octoprint-log; calibrate them separately"
        )
    if len(args.gcode) != n:
        raise CalibrationError(
            f"{n} --power-csv but {len(args.gcode)} --gcode; give the G-code each log printed"
        )
    if args.run_state and len(args.run_state) != n:
        raise CalibrationError(f"{len(args.run_state)} --run-state for {n} --power-csv; one each")
    states = [parse_run_state(s) for s in args.run_state] or [RunState()] * n
    base, stated = load_machine(args.base), {}
    out = _out_path(args, base)
    if args.fix_psu_efficiency is not None:
        el = replace(base.electrical, psu_efficiency=args.fix_psu_efficiency)
        base = replace(base, electrical=el)
        stated = {"electrical.psu_efficiency": el.psu_efficiency}
    plug = {
        "fmt": args.plug_format,
        "naive_tz": args.plug_tz,
        "unit": args.plug_unit,
        "entity": args.plug_entity,
        "start": args.plug_start,
    }
    runs = load_runs(list(zip(args.power_csv, args.gcode, states, strict=True)), base, **plug)
    held = [h.as_dict() for h in (leave_one_out(runs, base) if args.leave_one_out else [])]
    fit = fit_traces(runs, base)
    write_trace_profile(out, args.base, base, fit, stated=stated, holdout=held)
    ts = fit.params["time_scale"]
    if args.json:
        fit_d = {
            "rms_curve": fit.rms_curve,
            "time_scale": ts.value,
            "time_scale_stderr": known(ts.stderr),
            "sessions": fit.runs,
            "notes": fit.notes,
        }
        params = _params_json(fit.params)
        print_json({"params": params, "fit": fit_d, "holdout": held, "profile": str(out)})
        return 0
    _print_params(fit.params)
    print(
        f"\nfit: RMS cumulative-energy residual {100 * fit.rms_curve:.2f} % of each run; "
        f"time scale {ts.value:.3f} ± {ts.stderr:.2g}"
    )
    _print_holdout(held, "held-out print (fit to the others)")
    _print_use(out)
    return 0


def _params_json(params: dict) -> dict:
    return {
        k: {
            "value": p.value,
            "stderr": known(p.stderr),
            "identified": p.identified,
            "prior": p.prior,
        }
        for k, p in params.items()
    }


def _print_params(params: dict) -> None:
    rows = [
        [k, f"{p.value:.4g}", f"{p.stderr:.2g}", "yes" if p.identified else "no (prior kept)"]
        for k, p in params.items()
    ]
    print_table(rows, ["parameter", "value", "stderr", "identified"])


def _print_holdout(holdout: list[dict], title: str) -> None:
    if not holdout:
        return
    print()
    print_table(
        [
            [
                h["session"],
                f"{h['energy_kwh_measured'] * 1000:.2f}",
                f"{h['energy_kwh_predicted'] * 1000:.2f}",
                f"{100 * h['energy_error']:+.1f} %",
                f"{h['time_s_measured']:.0f}",
                f"{h['time_s_predicted']:.0f}",
            ]
            for h in holdout
        ],
        [title, "Wh measured", "Wh predicted", "error", "s measured", "s pred."],
    )


def _out_path(args: argparse.Namespace, base) -> Path:
    """The profile to write: ``--out``, or <base>-calibrated.toml in the user's calibrated
    profiles (found by name from any folder)."""
    if not args.out:  # the profile's name becomes the output file name: check it first
        safe_name(base.name, f"{base.path or args.base}: key 'name'")
    out = Path(args.out) if args.out else calibrated_dir() / f"{base.name}-calibrated.toml"
    if out.exists() and out.is_dir():
        raise CalibrationError(f"{out}: is a directory; --out needs a .toml file path")
    return out


def _print_use(out: Path) -> None:
    """Where the profile went and the --printer value that finds it again."""
    use = out.stem if out.parent.resolve() == calibrated_dir().resolve() else str(out)
    print(f"\nprofile: {out}\nuse it with: --printer {use}")


def register(sub: argparse._SubParsersAction) -> None:
    epilog = POWER_EPILOG + "\n" + EPILOG + "\n" + OCTOPRINT_EPILOG
    p = add_command(sub, "calibrate", HELP, DESCRIPTION, epilog, run)
    p.add_argument("sessions", nargs="*", metavar="SESSION", help="session folder(s) to fit")
    p.add_argument(
        "--holdout",
        action="append",
        default=[],
        metavar="SESSION",
        help="session predicted from its G-code with the fitted profile (repeatable)",
    )
    p.add_argument(
        "--printer",
        "--base",
        dest="base",
        default="ender3-v2",
        help="machine profile the calibration refines; its values are the priors "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="PROFILE.toml",
        help="calibrated profile to write (default: <base>-calibrated.toml in your data folder, "
        "found by name from any folder; 'slicer-energy profiles' shows where)",
    )
    p.add_argument(
        "--fix-psu-efficiency",
        type=float_in(0.3, 1.0),
        default=None,
        metavar="ETA",
        help="hold PSU efficiency, 0.3 to 1 (1.0 for a meter on the DC side of the supply)",
    )
    p.add_argument("--plots", metavar="DIR", help="write power and temperature PNG plots here")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_octoprint_arguments(p)
    _add_trace_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.power_csv:
        return _run_traces(args)
    # The fit pulls in scipy.optimize and pandas: imported here, not when the CLI starts.
    from ..calib.inputs.session import load_session
    from ..calib.profile import write_profile
    from ..calib.validate import calibrate_sessions, predict_session

    base = load_machine(args.base)
    out = _out_path(args, base)
    fit_s = [load_session(f) for f in args.sessions]
    fit_s += _octoprint_sessions(args, report=lambda m: print(m, file=sys.stderr))
    if not fit_s:
        raise CalibrationError(
            "nothing to calibrate from: give SESSION folders, --octoprint-log or --power-csv"
        )
    hold_s = [load_session(f) for f in args.holdout]
    fix = {}
    if args.fix_psu_efficiency is not None:
        fix["electrical.psu_efficiency"] = args.fix_psu_efficiency
    fit, cm = calibrate_sessions(fit_s, base, fix=fix)
    ts, ts_se = fit.time_scale, fit.time_scale_stderr
    holdout = [predict_session(s, cm).as_dict() for s in hold_s]
    write_profile(out, args.base, base, fit, holdout=holdout)
    plots = []
    if args.plots:
        plots = _plots(Path(args.plots), fit_s + hold_s, fit, base)
    if args.json:
        print_json(
            {
                "params": _params_json(fit.params),
                "fit": {
                    "r2": fit.r2,
                    "rms_w": fit.rms_w,
                    "rms_temp_c": fit.rms_temp_c,
                    "n_power": fit.n_power,
                    "n_temp": fit.n_temp,
                    "time_scale": ts,
                    "time_scale_stderr": known(ts_se),
                    "homing_s": fit.homing_s,
                    "sessions": fit.sessions,
                    "notes": fit.notes,
                },
                "holdout": holdout,
                "profile": str(out),
                "plots": [str(p) for p in plots],
            }
        )
        return 0
    _print_params(fit.params)
    print(
        f"\nfit: R² {fit.r2:.4f}, RMS {fit.rms_w:.2f} W over {fit.n_power} readings; "
        + ", ".join(f"{h} RMS {v:.3f} °C" for h, v in fit.rms_temp_c.items())
        + f"; time scale {ts:.3f}"
    )
    _print_holdout(holdout, "held-out session")
    _print_use(out)
    for p in plots:
        print(f"plot: {p}")
    return 0


def _plots(folder: Path, sessions, fit, base) -> list[Path]:
    import matplotlib

    from ..calib.fit import HEATERS, model_power, model_temp, prepare

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    th = {k: p.value for k, p in fit.params.items()}
    written = []
    for s in sessions:
        pr = prepare(s)
        model = model_power(th, pr.feats)
        fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=[3, 1])
        a1.plot(s.power_t_s, s.power_w, lw=0.8, label="measured")
        a1.plot(s.power_t_s, model, lw=0.8, label="model")
        a1.set_ylabel("wall power (W)")
        a1.legend()
        a1.set_title(f"{s.name}: power")
        a2.plot(s.power_t_s, s.power_w - model, lw=0.6, color="k")
        a2.set_ylabel("residual (W)")
        a2.set_xlabel("session time (s)")
        p = folder / f"{s.name}_power.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
        fig, ax = plt.subplots(figsize=(10, 4))
        for h in HEATERS:
            tr = s.heaters.get(h)
            if tr is None:
                continue
            ax.plot(tr.t_s, tr.actual_c, lw=0.8, label=f"{h} measured")
            if h in pr.temp and pr.temp[h][0].size:
                t0, _t1, dt, d, t_end, flow = pr.temp[h]
                g = flow * base.filament.mass_g(1.0)
                ax.plot(t_end, model_temp(th, h, t0, dt, d, g), ".", ms=2, label=f"{h} model")
        ax.set_xlabel("session time (s)")
        ax.set_ylabel("°C")
        ax.legend()
        ax.set_title(f"{s.name}: temperatures (model: one step from each report)")
        p = folder / f"{s.name}_temps.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    return written
