"""``slicer-energy rig``: log a real printer and power meter, or simulate both.

Subcommands: ``ports`` (list serial ports), ``log`` (record a session), ``simulate`` (virtual
printer and meter on ptys until Ctrl-C), ``demo`` (a whole simulated session end to end).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from ..errors import SlicerEnergyError
from ._numbers import nonneg_float, positive_float, positive_int
from ._output import print_json, print_table
from ._parser import add_command

LOG_EPILOG = """\
examples:
  slicer-energy rig ports
  slicer-energy rig log --port /dev/ttyUSB0 --meter pzem:/dev/ttyUSB1 --gcode part.gcode
  slicer-energy rig log --port /dev/ttyACM0 --meter shelly:192.168.1.40 --out my_logs
  slicer-energy rig log --port /dev/ttyACM0 --baud 115200 --attach --meter tasmota:plug.local
  slicer-energy rig simulate --json          # then: rig log --port PTY --meter pzem:PTY
  slicer-energy rig demo --out /tmp/rig --printer-seed 3 --seed 1

Meters: pzem:PORT (PZEM-004T v3, Modbus RTU 9600 8N1, address 0xF8), sdm120:PORT,
sdm230:PORT, sdm630:PORT (Eastron, address 1), tasmota:HOST, shelly:HOST (Gen1 or Gen2).
--no-meter logs the printer alone; with a meter that never answers the session ends with
status "meter never answered" and exit code 1.
Each session is a folder (serial.log, power.csv, temps.csv, meta.toml; summary.toml and
Parquet copies at the end); see firmware_logs/README.md for the format.
"""


METER_KINDS = ("pzem", "sdm120", "sdm230", "sdm630")  # what the virtual meter can be
LOG_DESCRIPTION = (
    "Connect to the printer (handshake M110, M115), start temperature reports (M155 "
    "or M105 polling), poll the meter, optionally print a G-code file, and write one "
    "session folder. Ctrl-C stops cleanly (the print is cancelled, heaters off); "
    "everything recorded stays on disk."
)
SIMULATE_DESCRIPTION = (
    "Starts a virtual Marlin 2.x printer and a virtual PZEM/SDM meter on pseudo-"
    "terminals and prints their paths; any host (ours, OctoPrint, Pronterface) can "
    "open them like USB ports. Runs until Ctrl-C."
)
DEMO_DESCRIPTION = (
    "Runs a virtual printer and meter, connects our host and logger to them over ptys, "
    "prints a G-code file (a small built-in part by default), and writes a session "
    "folder plus <session>.sim_truth.toml with the hidden parameters beside it."
)


HELP = "log a printer and a power meter, or simulate both"
DESCRIPTION = (
    "Calibration rig: talk to a Marlin/RepRap printer over USB serial and to a power "
    "meter, record everything append-only, or run a virtual printer and meter."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "rig", HELP, DESCRIPTION, LOG_EPILOG)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    rsub = p.add_subparsers(dest="rig_command", metavar="SUBCOMMAND")
    for name, line, description, epilog, add_options, run in (
        ("ports", "list serial ports with their descriptions", None, None, _ports_options,
         cmd_ports),
        ("log", "record a printer (and meter) session; optionally stream a G-code file",
         LOG_DESCRIPTION, LOG_EPILOG, _log_options, cmd_log),
        ("simulate", "run a virtual Marlin printer and power meter on ptys until Ctrl-C",
         SIMULATE_DESCRIPTION, "example: slicer-energy rig simulate --json --scale 10",
         _simulate_options, cmd_simulate),
        ("demo", "a whole simulated session end to end (printer + meter + logger)",
         DEMO_DESCRIPTION,
         "example: slicer-energy rig demo --out /tmp/rig --printer-seed 3 --seed 1",
         _demo_options, cmd_demo),
    ):  # fmt: skip
        add_options(add_command(rsub, name, line, description, epilog, run))


def _ports_options(ports: argparse.ArgumentParser) -> None:
    ports.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _log_options(log: argparse.ArgumentParser) -> None:
    log.add_argument("--port", required=True, help="serial port of the printer, e.g. /dev/ttyUSB0")
    log.add_argument(
        "--baud", type=positive_int, default=None, help="baud rate (default: try 250000, 115200)"
    )
    meter = log.add_mutually_exclusive_group(required=True)
    meter.add_argument("--meter", default=None, help="KIND:PORT_OR_HOST (see below)")
    meter.add_argument(
        "--no-meter", action="store_true", help="log the printer alone, without a power meter"
    )
    log.add_argument(
        "--gcode", default=None, metavar="FILE", help="G-code file to stream to the printer"
    )
    log.add_argument(
        "--out",
        default="firmware_logs",
        metavar="DIR",
        help="parent folder, made if missing; the session is a new folder in it "
        "(default: ./firmware_logs)",
    )
    log.add_argument("--label", default=None, help="session name suffix (default: G-code name)")
    for option, kind, default, text in (
        ("--meter-interval", positive_float, 1.0, "seconds between meter reads (1.0)"),
        (
            "--meter-timeout",
            positive_float,
            10.0,
            "seconds without a valid meter reading before the live line warns (10)",
        ),
        ("--temp-interval", positive_float, 1.0, "seconds between temperature reports"),
        ("--tail", nonneg_float, 60.0, "seconds to keep logging after the print (60)"),
        ("--duration", positive_float, None, "without --gcode: log this many seconds"),
    ):
        log.add_argument(option, type=kind, default=default, help=text)
    log.add_argument(
        "--attach",
        action="store_true",
        help="listen only (printer prints from SD); WARNING: opening the port resets many "
        "Arduino-Mega boards and can kill a running print",
    )
    log.add_argument("--quiet", action="store_true", help="no live status line")


def _simulate_options(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("--json", action="store_true", help='one line {"printer":..,"meter":..}')
    sim.add_argument("--printer-seed", type=int, default=1, help="hidden physics draw (1)")
    sim.add_argument("--seed", type=int, default=0, help="noise and fault draw (0)")
    sim.add_argument("--meter-kind", default="pzem", choices=METER_KINDS)
    sim.add_argument("--scale", type=float, default=1.0, help="simulated s per real s (1)")
    sim.add_argument("--noise", type=float, default=0.0, help="fraction of lines corrupted (0)")
    sim.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)


def _demo_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="parent folder, made if missing; the session is a new folder in it",
    )
    demo.add_argument("--printer-seed", type=int, default=1, help="same seed = same printer (1)")
    demo.add_argument("--seed", type=int, default=0, help="noise and faults (0)")
    demo.add_argument(
        "--gcode",
        default=None,
        metavar="FILE",
        help="G-code file to print (default: a built-in demo part)",
    )
    demo.add_argument(
        "--scale",
        type=float,
        default=50.0,
        help="paces simulated s per real s (50; inf: as fast as the CPU allows); "
        "the session itself does not depend on it",
    )
    demo.add_argument("--meter-kind", default="pzem", choices=METER_KINDS)
    demo.add_argument("--tail", type=float, default=60.0, help="seconds logged after the print")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")


# ------------------------------------------------------------------ ports


def cmd_ports(args) -> int:
    from serial.tools import list_ports

    rows = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        vid = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None else ""
        rows.append(
            {
                "port": p.device,
                "description": p.description or "",
                "usb_id": vid,
                "manufacturer": p.manufacturer or "",
                "serial_number": p.serial_number or "",
            }
        )
    if args.json:
        print_json(rows)
    elif not rows:
        print("no serial ports found (is the printer plugged in and powered?)")
    else:
        print_table(
            [(r["port"], r["description"], r["usb_id"], r["manufacturer"]) for r in rows],
            ("port", "description", "usb id", "manufacturer"),
        )
    return 0


# ------------------------------------------------------------------ log


def _status_printer(quiet: bool, clock):
    t0 = clock()
    last = [0.0]

    def status(host, poller):
        from ..rig.session import status_line

        if quiet or time.monotonic() - last[0] < 0.5:
            return
        last[0] = time.monotonic()
        sys.stderr.write("\r" + status_line(host, poller, t0, clock())[:150].ljust(150))
        sys.stderr.flush()

    return status


class _EarlyLines:
    """The host's line callback before the session folder exists: keeps the lines, then
    forwards them (and every later one) to the logger, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[tuple[str, str, float]] = []
        self._target = None

    def __call__(self, direction: str, text: str, t_s: float) -> None:
        with self._lock:
            if self._target is None:
                self._lines.append((direction, text, t_s))
                return
        self._target(direction, text, t_s)

    def forward_to(self, target) -> None:
        with self._lock:
            for line in self._lines:
                target(*line)
            self._lines.clear()
            self._target = target


def cmd_log(args) -> int:
    from ..rig.logger import SessionLogger
    from ..rig.marlin import ATTACH_WARNING
    from ..rig.meters import open_meter
    from ..rig.session import read_gcode_lines, run_session

    gcode_lines = read_gcode_lines(args.gcode) if args.gcode else None
    if args.attach and args.gcode:
        raise SlicerEnergyError("--attach only listens; it cannot print a --gcode file")
    if args.attach and not args.baud:
        raise SlicerEnergyError("--attach needs --baud (no handshake is tried)")
    label = args.label or (Path(args.gcode).stem if args.gcode else "session")
    meta = _log_meta(args, gcode_lines)
    meter = open_meter(args.meter) if args.meter else None
    if args.attach:
        print(f"warning: {ATTACH_WARNING}", file=sys.stderr)
    # The session folder is made once the printer answered, so a busy or missing port is a
    # one-line error without an empty session left behind; the lines exchanged until then
    # are kept and written first.
    early = _EarlyLines()
    host = _open_printer(args, meter, early)
    logger = SessionLogger(args.out, label, meta=meta)
    early.forward_to(logger.serial)
    print(f"session folder: {logger.folder}", file=sys.stderr)
    poller = None
    try:
        poller = _start_recording(args, host, logger, meter)
        tail = args.tail if gcode_lines else (args.duration if args.duration else 1e12)
        result = run_session(
            host,
            logger,
            poller,
            gcode_lines=gcode_lines,
            gcode_name=Path(args.gcode).name if args.gcode else "",
            tail_s=tail,
            status=_status_printer(args.quiet, time.monotonic),
        )
    except BaseException:
        if poller is not None:
            poller.stop()
        host.close()
        if not logger.closed:
            logger.close("interrupted" if sys.exc_info()[0] is KeyboardInterrupt else "error")
        print(f"\nsession kept in {logger.folder}", file=sys.stderr)
        raise
    finally:
        if meter is not None:
            meter.close()
    if not args.quiet:
        sys.stderr.write("\n")
    _print_summary(result.folder, result.summary, result.status, result.messages)
    return 0 if result.status == "finished" else 1


def _log_meta(args, gcode_lines: list[str] | None) -> dict:
    """meta.toml as ``rig log`` knows it before the printer answered."""
    from ..rig.session import file_sha256

    meta = {
        "printer": {"port": args.port, "baud": args.baud or 0, "attach": bool(args.attach)},
        "meter": {"spec": args.meter or ""},
        "settings": {
            "meter_interval_s": args.meter_interval,
            "meter_timeout_s": args.meter_timeout,
            "temp_interval_s": args.temp_interval,
            "tail_s": args.tail,
        },
    }
    if args.gcode:
        meta["gcode"] = {
            "path": str(Path(args.gcode).resolve()),
            "sha256": file_sha256(args.gcode),
            "lines": len(gcode_lines or []),
        }
    return meta


def _open_printer(args, meter, on_line):
    """Attach to (``--attach``) or connect to the printer; the meter is closed if that fails."""
    from ..rig.marlin import attach, connect

    try:
        if args.attach:
            return attach(args.port, args.baud, on_line=on_line)
        return connect(args.port, args.baud, on_line=on_line)
    except BaseException:
        if meter is not None:
            meter.close()
        raise


def _start_recording(args, host, logger, meter):
    """Log temperatures and the firmware, start the temperature reports (not when attached:
    listen only) and the meter poller, which is returned (None without a meter)."""
    from ..rig.session import MeterPoller

    host.on_temps = logger.temps
    logger.update_meta(
        printer={"baud": getattr(host, "baud", args.baud or 0)},
        firmware={"name": host.firmware.name, "fields": host.firmware.fields},
        capabilities=dict(host.firmware.caps),
    )
    if not args.attach:
        mode = host.start_temperature_reports(args.temp_interval)
        logger.update_meta(settings={"temperature_reports": mode})
    if meter is None:
        return None
    return MeterPoller(
        meter,
        logger,
        time.monotonic,
        args.meter_interval,
        silent_after_s=args.meter_timeout,
    ).start()


def _print_summary(folder, summary, status, messages) -> None:
    print(f"session: {folder}")
    print(f"status:  {status}" + (f" ({'; '.join(m for m in messages if m)})" if messages else ""))
    if not summary:
        return
    rows = [
        (
            "total",
            f"{summary['duration_s']:.0f}",
            f"{summary['energy_kwh']:.5f}",
            f"{summary['mean_power_w']:.1f}",
        )
    ]
    for name, ph in summary.get("phases", {}).items():
        rows.append(
            (
                name,
                f"{ph['duration_s']:.0f}",
                f"{ph['energy_kwh']:.5f}",
                f"{ph['mean_power_w']:.1f}",
            )
        )
    print_table(rows, ("phase", "seconds", "kWh", "mean W"))
    if "meter_counter_kwh" in summary:
        print(f"meter counter: {summary['meter_counter_kwh']:.4f} kWh (1 Wh resolution)")


# ------------------------------------------------------------------ simulate


def cmd_simulate(args) -> int:
    from ..rig.sim.physics import SimClock, draw_printer
    from ..rig.sim.printer import Faults, VirtualMeter, VirtualPrinter

    clock = SimClock(args.scale)
    printer = VirtualPrinter(
        draw_printer(args.printer_seed), clock, Faults(noise_rate=args.noise, seed=args.seed)
    ).start()
    meter = VirtualMeter(printer.physics, clock, args.meter_kind, seed=args.seed).start()
    info = {
        "printer": printer.path,
        "meter": meter.path,
        "meter_kind": args.meter_kind,
        "baud": 115200,
        "time_scale": args.scale,
    }
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        print(f"virtual printer: {printer.path}  (Marlin 2.x, any baud)")
        print(f"virtual meter:   {meter.path}  ({args.meter_kind}, Modbus RTU)")
        print(
            f"try: slicer-energy rig log --port {printer.path} "
            f"--meter {args.meter_kind}:{meter.path}"
        )
        print("Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        meter.stop()
        printer.stop()
    return 0


# ------------------------------------------------------------------ demo


def cmd_demo(args) -> int:
    from ..rig.sim.demo import run_demo

    res = run_demo(
        args.out,
        printer_seed=args.printer_seed,
        seed=args.seed,
        gcode_path=args.gcode,
        scale=args.scale,
        meter_kind=args.meter_kind,
        tail_s=args.tail,
    )
    s = res.session
    if args.json:
        print_json(
            {
                "session": str(s.folder),
                "truth": str(res.truth_path),
                "status": s.status,
                "messages": s.messages,
                "summary": s.summary,
            }
        )
    else:
        _print_summary(s.folder, s.summary, s.status, s.messages)
        print(f"hidden parameters (not for calibration): {res.truth_path}")
    return 0 if s.status == "finished" else 1
