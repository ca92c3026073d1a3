"""A whole simulated session: virtual printer + virtual meter on ptys, our host, our logger.

The printer's hidden parameters come from ``printer_seed`` and are written ONLY to
``<out>/<session>.sim_truth.toml``, beside (not inside) the session folder, so that a
calibration step that reads the session folder cannot see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .logger import SessionLogger, dump_toml
from .marlin import connect
from .meters import PzemMeter, SdmMeter
from .session import MeterPoller, SessionResult, file_sha256, run_session
from .sim import Faults, VirtualMeter, VirtualPrinter, demo_gcode
from .simphysics import PARAM_RANGES, PWM_FULL_SCALE, SimClock, draw_printer

TRUTH_SUFFIX = ".sim_truth.toml"


@dataclass
class DemoResult:
    session: SessionResult
    truth_path: Path


def run_demo(
    out: str | Path,
    *,
    printer_seed: int = 1,
    seed: int = 0,
    gcode_path: str | Path | None = None,
    gcode_lines: list[str] | None = None,
    scale: float = 50.0,
    meter_kind: str = "pzem",
    meter_interval_s: float = 1.0,
    temp_interval_s: float = 1.0,
    tail_s: float = 60.0,
    faults: Faults | None = None,
    label: str | None = None,
    status=None,
) -> DemoResult:
    """Run one simulated print end to end and return the session and the truth file paths.

    ``scale`` is simulated seconds per real second. ``seed`` drives line noise (0.5 % of lines
    corrupted) and meter noise; pass ``faults`` to choose other faults.
    """
    params = draw_printer(printer_seed)
    clock = SimClock(scale)
    faults = faults or Faults(noise_rate=0.005, seed=seed)
    if gcode_lines is None:
        if gcode_path is not None:
            gcode_lines = (
                Path(gcode_path).read_text(encoding="utf-8", errors="replace").splitlines()
            )
        else:
            gcode_lines = demo_gcode()
    printer = VirtualPrinter(params, clock, faults).start()
    vmeter = VirtualMeter(printer.physics, clock, meter_kind, seed=seed).start()
    gname = Path(gcode_path).name if gcode_path else "demo_gcode (built in)"
    meta = {
        "printer": {
            "port": printer.path,
            "simulated": True,
            # firmware convention, not a hidden parameter: @: and B@: are printed 0..127
            "pwm_full_scale": PWM_FULL_SCALE,
        },
        "meter": {"kind": meter_kind, "port": vmeter.path, "simulated": True},
        "gcode": {"name": gname, "lines": len(gcode_lines)},
        "settings": {
            "meter_interval_s": meter_interval_s,
            "temp_interval_s": temp_interval_s,
            "time_scale": scale,
        },
    }
    if gcode_path is not None:
        meta["gcode"]["path"] = str(gcode_path)
        meta["gcode"]["sha256"] = file_sha256(gcode_path)
    logger = SessionLogger(
        out, label or f"sim-demo-p{printer_seed}-s{seed}", meta=meta, clock=clock.now
    )
    logger.update_meta(session={"clock": "simulated seconds (SimClock)"})
    meter = None
    try:
        host = connect(
            printer.path,
            115200,
            on_line=logger.serial,
            clock=clock.now,
            timeout_s=5.0,
            handshake_wait_s=1.0,
        )
        host.on_temps = logger.temps
        logger.update_meta(
            firmware={"name": host.firmware.name, "fields": host.firmware.fields},
            capabilities={k: v for k, v in host.firmware.caps.items()},
        )
        mode = host.start_temperature_reports(temp_interval_s)
        logger.update_meta(settings={"temperature_reports": mode})
        meter = (
            PzemMeter(vmeter.path)
            if meter_kind == "pzem"
            else SdmMeter(vmeter.path, kind=meter_kind)
        )
        poller = MeterPoller(meter, logger, clock.now, meter_interval_s / scale).start()
        result = run_session(
            host,
            logger,
            poller,
            gcode_lines=gcode_lines,
            gcode_name=gname,
            tail_s=tail_s,
            real_per_session_s=1.0 / scale,
            status=status,
        )
    finally:
        if meter is not None:
            meter.close()
        vmeter.stop()
        printer.stop()
        if not logger.closed:
            logger.close("error")
    truth = {
        "warning": (
            "hidden parameters of a simulated printer; calibration must never read this file"
        ),
        "session_folder": result.folder.name,
        "printer_seed": printer_seed,
        "noise_seed": seed,
        "time_scale": scale,
        "true_energy_kwh_metered_window": (
            (vmeter.true_log[-1][1] - vmeter.true_log[0][1]) / 3.6e6 if vmeter.true_log else 0.0
        ),
        # time the planner spent moving; the rest of the print phase is waiting (heating, or
        # the host not keeping the 16-block buffer full at this time scale)
        "motion_time_s": printer.motion_time_s,
        "metered_window_s": (
            vmeter.true_log[-1][0] - vmeter.true_log[0][0] if vmeter.true_log else 0.0
        ),
        "params": params.to_dict(),
        "ranges": {
            k: {"low": lo, "high": hi, "source": src} for k, (lo, hi, src) in PARAM_RANGES.items()
        },
        "faults": {
            "noise_rate": faults.noise_rate,
            "drop_ok_rate": faults.drop_ok_rate,
        },
    }
    truth_path = Path(out) / (result.folder.name + TRUTH_SUFFIX)
    truth_path.write_text(dump_toml(truth), encoding="utf-8")
    return DemoResult(result, truth_path)
