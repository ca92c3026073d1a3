"""A whole simulated session: virtual printer + virtual meter on ptys, our host, our logger.

The printer's hidden parameters come from ``printer_seed`` and are written ONLY to
``<out>/<session>.sim_truth.toml``, beside (not inside) the session folder, so that a
calibration step that reads the session folder cannot see them.

Time is a :class:`~.physics.VirtualClock`: it advances with the printer's work (moves,
dwells, heating) and stands still while the host, the meter poller and the session loop
answer, so the same seeds give the same session on an idle or a loaded machine; ``scale``
only paces it for watching (``inf``: as fast as the CPU allows).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ...errors import RigSetupError
from ..logger import SessionLogger, dump_toml
from ..marlin import MarlinHost, connect, job_command
from ..meters import PzemMeter, SdmMeter
from ..session import (
    MeterPoller,
    SessionResult,
    file_sha256,
    first_extrusion_index,
    run_session,
)
from .physics import PARAM_RANGES, PWM_FULL_SCALE, PrinterParams, VirtualClock, draw_printer
from .printer import Faults, VirtualMeter, VirtualPrinter, demo_gcode

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

    ``scale`` paces simulated seconds per real second (``math.inf``: unpaced); the session
    does not depend on it. ``seed`` drives line noise (0.5 % of lines corrupted) and meter
    noise; pass ``faults`` to choose other faults.
    """
    if not scale > 0:
        raise RigSetupError(f"--scale: must be a number > 0 (inf: unpaced), got {scale}")
    params = draw_printer(printer_seed)
    clock = VirtualClock(scale)  # started once the session loop's holds are in place
    faults = faults or Faults(noise_rate=0.005, seed=seed)
    if gcode_lines is None:
        if gcode_path is not None:
            gcode_lines = (
                Path(gcode_path).read_text(encoding="utf-8", errors="replace").splitlines()
            )
        else:
            gcode_lines = demo_gcode()
    printer = VirtualPrinter(params, clock, faults).start()
    vmeter = VirtualMeter(
        printer.physics, clock, meter_kind, seed=seed, interval_s=meter_interval_s
    ).start()
    gname = Path(gcode_path).name if gcode_path else "demo_gcode (built in)"
    meta = _session_meta(printer, vmeter, meter_kind, gname, gcode_lines, gcode_path)
    meta["settings"] = {
        "meter_interval_s": meter_interval_s,
        "temp_interval_s": temp_interval_s,
        "time_scale": scale,
    }
    logger = SessionLogger(
        out, label or f"sim-demo-p{printer_seed}-s{seed}", meta=meta, clock=clock.now
    )
    logger.update_meta(session={"clock": "simulated seconds (VirtualClock)"})
    meter = None
    clock.hold_while(lambda: _last_phase(logger) in (None, "idle"))  # until the job starts
    clock.start()
    tail = _Tail(clock, logger, tail_s, vmeter)
    try:
        host = _connect_host(clock, printer, logger, gcode_lines, temp_interval_s)
        meter = _open_meter(vmeter, meter_kind, clock)
        poller = MeterPoller(meter, logger, clock.now, meter_interval_s / scale).start()
        result = run_session(
            host,
            logger,
            poller,
            gcode_lines=gcode_lines,
            gcode_name=gname,
            tail_s=tail_s,  # in real seconds a bound only: _Tail ends it in simulated time
            real_per_session_s=max(1.0, 2.0 / scale),
            status=status,
            stop=tail.done,
        )
    finally:
        tail.stop()
        if meter is not None:
            meter.close()
        vmeter.stop()
        printer.stop()
        clock.stop()
        if not logger.closed:
            logger.close("error")
    truth = _truth(result, printer, vmeter, params, faults, printer_seed, seed, scale)
    truth_path = Path(out) / (result.folder.name + TRUTH_SUFFIX)
    truth_path.write_text(dump_toml(truth), encoding="utf-8")
    return DemoResult(result, truth_path)


def _session_meta(
    printer: VirtualPrinter,
    vmeter: VirtualMeter,
    meter_kind: str,
    gname: str,
    gcode_lines: list[str],
    gcode_path: str | Path | None,
) -> dict:
    """meta.toml's printer, meter and gcode tables of a simulated session."""
    meta: dict = {
        "printer": {
            "port": printer.path,
            "simulated": True,
            # firmware convention, not a hidden parameter: @: and B@: are printed 0..127
            "pwm_full_scale": PWM_FULL_SCALE,
        },
        "meter": {"kind": meter_kind, "port": vmeter.path, "simulated": True},
        "gcode": {"name": gname, "lines": len(gcode_lines)},
    }
    if gcode_path is not None:
        meta["gcode"]["path"] = str(gcode_path)
        meta["gcode"]["sha256"] = file_sha256(gcode_path)
    return meta


def _connect_host(
    clock: VirtualClock,
    printer: VirtualPrinter,
    logger: SessionLogger,
    gcode_lines: list[str],
    temp_interval_s: float,
) -> MarlinHost:
    """Our host on the virtual printer's pty, handshaken, its firmware in meta.toml, time held
    for the session loop and the temperature logging, temperature reports started."""
    host = connect(
        printer.path,
        115200,
        on_line=logger.serial,
        clock=clock.now,
        # no ok in 30 s of real time: only a machine starved of CPU stalls the clock
        # that long, and a nudge then would change the session
        timeout_s=30.0,
        handshake_wait_s=1.0,
    )
    _hold_for_session_loop(clock, host, logger, gcode_lines)
    _hold_for_temperature_logging(clock, host, logger, printer)
    logger.update_meta(
        firmware={"name": host.firmware.name, "fields": host.firmware.fields},
        capabilities={k: v for k, v in host.firmware.caps.items()},
    )
    mode = host.start_temperature_reports(temp_interval_s)
    logger.update_meta(settings={"temperature_reports": mode})
    return host


def _open_meter(vmeter: VirtualMeter, meter_kind: str, clock: VirtualClock):
    """Our meter reader on the virtual meter's pty."""
    # the meter answers at its next tick, which waits while time stands still
    wait_s = 3.0 * clock.grace_s
    if meter_kind == "pzem":
        return PzemMeter(vmeter.path, timeout_s=wait_s)
    return SdmMeter(vmeter.path, kind=meter_kind, timeout_s=wait_s)


def _truth(
    result: SessionResult,
    printer: VirtualPrinter,
    vmeter: VirtualMeter,
    params: PrinterParams,
    faults: Faults,
    printer_seed: int,
    seed: int,
    scale: float,
) -> dict:
    """The truth file: what the simulation knows and the session folder must not."""
    return {
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
        # time the planner spent moving; the rest of the print phase is waiting (heating,
        # dwells, homing waits); host latency is not simulated time (VirtualClock)
        "motion_time_s": printer.motion_time_s,
        "metered_window_s": (
            vmeter.true_log[-1][0] - vmeter.true_log[0][0] if vmeter.true_log else 0.0
        ),
        "params": params.to_dict(),
        # what a first-order calibration is compared with (PrinterParams.effective) at the
        # highest set points the session held (a heater never heated: its reference point)
        "effective": params.effective(
            printer.physics.max_target_c["hotend"] or params.hotend.t_ref_c,
            printer.physics.max_target_c["bed"] or params.bed.t_ref_c,
        ),
        "ranges": {
            k: {"low": lo, "high": hi, "source": src} for k, (lo, hi, src) in PARAM_RANGES.items()
        },
        "faults": {
            "noise_rate": faults.noise_rate,
            "drop_ok_rate": faults.drop_ok_rate,
        },
    }


def _last_phase(logger: SessionLogger) -> str | None:
    return logger.phases[-1][0] if logger.phases else None


def _hold_for_session_loop(
    clock: VirtualClock, host: MarlinHost, logger: SessionLogger, gcode_lines: list[str]
) -> None:
    """Time stands still until ``run_session``'s loop (which looks every 50 ms of real time)
    has logged what the host saw: its first extruding line acknowledged
    (``print``), its end (``after``); so the phase times do not depend on the wall clock."""
    extrude_at = first_extrusion_index([c for c in (job_command(ln) for ln in gcode_lines) if c])
    if extrude_at is not None:
        clock.hold_while(lambda: _last_phase(logger) == "heatup" and host.job.acked > extrude_at)
    clock.hold_while(lambda: host.job.finished and _last_phase(logger) != "after")


def _hold_for_temperature_logging(
    clock: VirtualClock, host: MarlinHost, logger: SessionLogger, printer: VirtualPrinter
) -> None:
    """Time stands still from a temperature report's sending until the host has stamped and
    logged it, so each report is logged at the simulated time it was sent."""
    base, logged = printer.temp_reports, [0]

    def on_temps(heaters, t_s: float) -> None:
        logger.temps(heaters, t_s)
        logged[0] += 1

    host.on_temps = on_temps
    clock.hold_while(lambda: printer.temp_reports - base > logged[0])


class _Tail:
    """Ends the session ``tail_s`` simulated seconds after the ``after`` phase began, and
    stops time there, so the tail is as long as asked however long the wall clock takes."""

    def __init__(
        self, clock: VirtualClock, logger: SessionLogger, tail_s: float, vmeter: VirtualMeter
    ) -> None:
        self.clock = clock
        self.logger = logger
        self.tail_s = tail_s
        self.vmeter = vmeter
        self.done = threading.Event()
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-tail", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.clock.actor():
            self.clock.wait(lambda: _last_phase(self.logger) == "after", stop=self._quit)
            if self._quit.is_set():
                return
            t_end = self.logger.phases[-1][1] + self.tail_s
            self.clock.wait(until=t_end, stop=self._quit)
            self.clock.hold_while(lambda: True)
            self.vmeter.stop_ticking()
            self.done.set()

    def stop(self) -> None:
        self._quit.set()
        self.clock.wake()
        self._thread.join(timeout=2.0)
