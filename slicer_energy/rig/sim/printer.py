"""A virtual Marlin 2.x printer and a virtual power meter, each on a pseudo-terminal.

Any host opens the printer's pty path like a USB port: it gets Marlin's checksum and line-number
checks with ``Resend:``, ``busy:`` keepalives, M115 with ``Cap:`` lines, M155 auto-reports with
heater PWM. Moves go through a 16-block planner buffer (``ok`` as soon as a move is queued, as
in Marlin) and take simulated time; heaters and wall power follow
:class:`~slicer_energy.rig.sim.physics.Physics` (two-node heaters, a load-dependent supply).
The virtual meter (PZEM-004T or Eastron SDM, Modbus RTU) on a second pty reports that power.

Faults: corrupted lines (line noise), a dropped ``ok``, a reset (``start``) mid-print, a vanished
port. Time may run faster than real time (``SimClock(scale)``), or advance only with the
printer's work (``VirtualClock``: the same session however fast or loaded the host is).
"""

from __future__ import annotations

import collections
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .. import protocol as P
from .meter import VirtualMeter
from .motion import Block, Motion
from .physics import PWM_FULL_SCALE, Physics, PrinterParams, SimClock, VirtualClock
from .pty import PtyPort

__all__ = ["Faults", "VirtualMeter", "VirtualPrinter", "demo_gcode"]

FIRMWARE_NAME = "Marlin 2.1.2.1 (slicer-energy virtual printer)"
CAPS = {
    "SERIAL_XON_XOFF": 0,
    "BINARY_FILE_TRANSFER": 0,
    "EEPROM": 0,
    "VOLUMETRIC": 1,
    "AUTOREPORT_POS": 0,
    "AUTOREPORT_TEMP": 1,
    "PROGRESS": 0,
    "PRINT_JOB": 1,
    "AUTOLEVEL": 0,
    "Z_PROBE": 0,
    "LEVELING_DATA": 0,
    "BUILD_PERCENT": 1,
    "SOFTWARE_POWER": 0,
    "TOGGLE_LIGHTS": 0,
    "CASE_LIGHT_BRIGHTNESS": 0,
    "EMERGENCY_PARSER": 1,
    "HOST_ACTION_COMMANDS": 0,
    "PROMPT_SUPPORT": 0,
    "SDCARD": 0,
    "AUTOREPORT_SD_STATUS": 0,
    "THERMAL_PROTECTION": 1,
    "MOTION_MODES": 0,
    "ARCS": 1,
    "BABYSTEPPING": 0,
    "CHAINING": 0,
}
BOOT_LINES = ("start", "echo:Marlin 2.1.2.1", "echo: Last Updated: 2023-07-27")
BUSY_INTERVAL_S = 2.0  # Marlin DEFAULT_KEEPALIVE_INTERVAL
RESIDENCY_S = 10.0  # assumption: Marlin TEMP_RESIDENCY_TIME / TEMP_BED_RESIDENCY_TIME defaults
TEMP_WINDOW_C = 1.0  # assumption: Marlin TEMP_WINDOW / TEMP_BED_WINDOW defaults
PLANNER_BLOCKS = 16  # Marlin BLOCK_BUFFER_SIZE on 32-bit boards
_WORD = re.compile(r"([A-Z])\s*(-?\d*\.?\d+)")


@dataclass
class Faults:
    """What goes wrong, by rate (drawn from ``seed``) or at given line numbers."""

    noise_rate: float = 0.0  # probability a received numbered line is corrupted
    drop_ok_rate: float = 0.0  # probability an ok is not sent
    corrupt_lines: set[int] = field(default_factory=set)
    drop_ok_lines: set[int] = field(default_factory=set)
    reset_at_line: int | None = None
    vanish_at_line: int | None = None
    seed: int = 0


class VirtualPrinter:
    """Virtual Marlin printer on a pty. ``start()``, then open ``path`` from any host."""

    def __init__(
        self,
        params: PrinterParams,
        clock: SimClock | VirtualClock | None = None,
        faults: Faults | None = None,
        *,
        advanced_ok: bool = False,
        ok_after_resend: bool = True,
        busy_interval_s: float | None = BUSY_INTERVAL_S,
        autoreport: bool = True,
    ) -> None:
        self.params = params
        self.ok_after_resend = ok_after_resend
        self.busy_interval_s = busy_interval_s
        self.autoreport = autoreport
        self.clock = clock or SimClock(1.0)
        self.faults = faults or Faults()
        self.advanced_ok = advanced_ok
        self.rng = random.Random(f"faults-{self.faults.seed}")
        self.physics = Physics(params, self.clock.now())
        self.pty = PtyPort()
        self.path = self.pty.path
        self._stop = threading.Event()
        self._lock = threading.Lock()  # planner + printer state
        self._planner: collections.deque[Block] = collections.deque()
        self._executing = False
        self.last_n = 0
        self.motion = Motion(params)
        self.autoreport_s = 0.0
        self.progress_pct: float | None = None
        self.print_start_s: float | None = None
        self.received: list[str] = []  # accepted commands in order (for tests)
        self.motion_time_s = 0.0  # simulated seconds spent executing planner blocks
        self._inbuf = b""
        self.reset_done = False
        self._threads: list[threading.Thread] = []
        self.temp_reports = 0  # temperature lines sent (a host can tell when it has them all)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> VirtualPrinter:
        for body, name in (
            (self._serve_lines, "vprinter-serve"),
            (self._execute_blocks, "vprinter-motion"),
            (self._report_temps, "vprinter-report"),
        ):
            th = threading.Thread(target=self._as_actor, args=(body,), name=name, daemon=True)
            th.start()
            self._threads.append(th)
        self._send_lines(BOOT_LINES)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.clock.wake()
        self.pty.close()
        for th in self._threads:
            th.join(timeout=2.0)

    def vanish(self) -> None:
        """The USB cable is pulled: the device and its path disappear."""
        self.pty.close()
        self._stop.set()

    def _as_actor(self, body: Callable[[], None]) -> None:
        """A simulating thread's body runs as one of the clock's actors."""
        with self.clock.actor():
            body()

    def now(self) -> float:
        t = self.clock.now()
        self.physics.advance_to(t)
        return t

    # ------------------------------------------------------------------ output
    def _send(self, line: str) -> None:
        self.pty.write((line + "\n").encode("ascii", "replace"))

    def _send_lines(self, lines) -> None:
        for ln in lines:
            self._send(ln)

    def _ok(self, n: int | None) -> None:
        if (n is not None and n in self.faults.drop_ok_lines) or (
            self.faults.drop_ok_rate and self.rng.random() < self.faults.drop_ok_rate
        ):
            self.faults.drop_ok_lines.discard(n)
            return
        if self.advanced_ok:
            free = PLANNER_BLOCKS - len(self._planner)
            self._send(f"ok N{self.last_n} P{free} B3")
        else:
            self._send("ok")

    def _send_temps(self, form: str) -> None:
        self.temp_reports += 1
        self._send(form.format(self.temp_line()))

    def temp_line(self) -> str:
        ph = self.physics
        return (
            f"T:{ph.t_hotend_c:.2f} /{ph.target_hotend_c:.2f} B:{ph.t_bed_c:.2f} "
            f"/{ph.target_bed_c:.2f} @:{round(ph.duty_hotend * PWM_FULL_SCALE)} "
            f"B@:{round(ph.duty_bed * PWM_FULL_SCALE)}"
        )

    # ------------------------------------------------------------------ input
    def _serve_lines(self) -> None:
        answered = time.monotonic()  # the host's next line is due from then on
        while not self._stop.is_set():
            data = self.pty.read_from_peer(self.clock, answered)
            if data is None:
                return
            if not data and b"\n" not in self._inbuf:
                continue
            self._inbuf += data
            while b"\n" in self._inbuf:
                raw, self._inbuf = self._inbuf.split(b"\n", 1)
                line = raw.decode("ascii", "replace").strip()
                if line:
                    try:
                        self._handle_line(line)
                    except _Reset:
                        self._inbuf = b""
                        break
                if self._stop.is_set():
                    return
            answered = time.monotonic()

    def _poll_emergency(self) -> bool:
        """Marlin's EMERGENCY_PARSER: M108 (break a heating wait) and M112 act on the bytes as
        they arrive, even while a command blocks the queue. The line still reaches the queue
        afterwards (and gets its ok), as in Marlin. Called from the wait loops; True on M108."""
        data = self.pty.read(0.0)
        if not data:
            return False
        self._inbuf += data
        if b"M112" in data:
            self._halt()
        return b"M108" in data

    def _handle_line(self, line: str) -> None:
        n, cmd, cs = P.split_numbered(line)
        f = self.faults
        if n is not None and cs is not None:
            noisy = n in f.corrupt_lines or (f.noise_rate and self.rng.random() < f.noise_rate)
            if noisy:
                f.corrupt_lines.discard(n)
                cs = (cs + 1) % 256  # a flipped bit on the wire
        if n is not None:
            body = line.rsplit("*", 1)[0].strip() if "*" in line else line
            if cs is None:
                self._resend("No Checksum with line number")
                return
            if P.checksum(body) != cs:
                self._resend("checksum mismatch")
                return
            is_m110 = cmd.upper().startswith("M110")
            if not is_m110 and n != self.last_n + 1:
                self._resend("Line Number is not Last Line Number+1")
                return
            if is_m110:
                m = re.search(r"N\s*(-?\d+)", cmd[4:])
                self.last_n = int(m.group(1)) if m else n
            else:
                self.last_n = n
            if f.reset_at_line is not None and n >= f.reset_at_line and not self.reset_done:
                self.reset_done = True
                self._reset()
                raise _Reset
            if f.vanish_at_line is not None and n >= f.vanish_at_line:
                self.vanish()
                return
        elif cs is not None:
            self._send(f"Error:No Line Number with checksum, Last Line: {self.last_n}")
            self._ok(None)
            return
        self.received.append(cmd)
        self._command(cmd)
        self._ok(n)

    def _resend(self, why: str) -> None:
        self._send(f"Error:{why}, Last Line: {self.last_n}")
        self._send(f"Resend: {self.last_n + 1}")
        if self.ok_after_resend:
            self._send("ok")

    def _reset(self) -> None:
        with self._lock:
            self._planner.clear()
        self.clock.wake()
        t = self.now()
        with self.physics.lock:
            self.physics.advance_to(t)
            self.physics.target_bed_c = self.physics.target_hotend_c = 0.0
            self.physics.steppers_on = self.physics.moving = False
            self.physics.fan = 0.0
        self.last_n = 0
        self.autoreport_s = 0.0
        self._send_lines(BOOT_LINES)

    # ------------------------------------------------------------------ commands
    def _command(self, cmd: str) -> None:
        """Run one accepted command through its handler in ``_HANDLERS``."""
        word = cmd.split(None, 1)[0].upper() if cmd else ""
        args = {k: float(v) for k, v in _WORD.findall(cmd[len(word) :].upper())}
        handler = _HANDLERS.get(word)
        if handler is not None:
            handler(self, _Cmd(word, args, cmd))
        elif word and word not in _ACCEPTED:
            self._unknown(_Cmd(word, args, cmd))

    def _unknown(self, c: _Cmd) -> None:
        self._send(f'echo:Unknown command: "{c.text}"')

    def _move(self, c: _Cmd) -> None:
        block = self.motion.move(c.word, c.args)
        if block is not None:
            self._planner_add(block)

    def _home(self, c: _Cmd) -> None:
        self._wait_planner()
        block = self.motion.home(c.args)
        self._steppers(True)
        self._planner_add(block)
        self._wait_planner()

    def _dwell(self, c: _Cmd) -> None:
        self._wait_planner()
        self._block_for(self.now() + c.args.get("S", 0.0) + c.args.get("P", 0.0) / 1000.0)

    def _heater(self, c: _Cmd) -> None:
        """M104/M109 (hotend), M140/M190 (bed); M109/M190 wait, with R also while cooling."""
        heater = "hotend" if c.word in ("M104", "M109") else "bed"
        self._set_target(heater, c.args.get("S", c.args.get("R", 0.0)))
        if c.word in ("M109", "M190"):
            self._wait_temp(heater, wait_cool="R" in c.args)

    def _temperatures(self, c: _Cmd) -> None:
        self.now()
        self._send_temps("{}")

    def _autoreport(self, c: _Cmd) -> None:
        if self.autoreport:
            self.autoreport_s = c.args.get("S", 0.0)
        else:
            self._unknown(c)

    def _fan(self, c: _Cmd) -> None:
        fan = 0.0 if c.word == "M107" else c.args.get("S", 255) / 255
        self._planner_add(Block(0.0, False, 0.0, fan=fan))

    def _steppers_off(self, c: _Cmd) -> None:
        self._wait_planner()
        self._steppers(False)

    def _firmware_info(self, c: _Cmd) -> None:
        self._send(
            f"FIRMWARE_NAME:{FIRMWARE_NAME} SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
            "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Virtual EXTRUDER_COUNT:1 UUID:none"
        )
        for k, v in CAPS.items():
            self._send(f"Cap:{k}:{int(self.autoreport) if k == 'AUTOREPORT_TEMP' else v}")

    def _progress(self, c: _Cmd) -> None:
        if "P" in c.args:
            self.progress_pct = c.args["P"]

    def _print_time(self, c: _Cmd) -> None:
        t = self.now() - (self.print_start_s or self.now())
        h, rem = divmod(int(t), 3600)
        m, s = divmod(rem, 60)
        self._send(f"echo:Print time: {h}h {m}m {s}s" if h else f"echo:Print time: {m}m {s}s")

    def _halt(self, c: _Cmd | None = None) -> None:
        """M112 (also from the emergency parser): Marlin's kill()."""
        self._send("Error:Printer halted. kill() called!")
        self._stop.set()

    def _line_number(self, c: _Cmd) -> None:
        """M110 N: Marlin M110.cpp set_current_line_number(N), numbered line or not."""
        if "N" in c.args:
            self.last_n = int(c.args["N"])

    def _job_start(self, c: _Cmd) -> None:
        self.print_start_s = self.now()

    def _steppers(self, on: bool) -> None:
        t = self.now()
        with self.physics.lock:
            self.physics.advance_to(t)
            self.physics.steppers_on = on

    def _set_target(self, heater: str, t_c: float) -> None:
        t = self.now()
        with self.physics.lock:
            self.physics.advance_to(t)
            if heater == "hotend":
                self.physics.target_hotend_c = t_c
            else:
                self.physics.target_bed_c = t_c
        if self.print_start_s is None and t_c > 0:
            self.print_start_s = t

    def _wait_temp(self, heater: str, wait_cool: bool) -> None:
        """M109/M190: report temperatures every second until within the window for
        RESIDENCY_S (heating) or below target (cooling with R)."""
        ph = self.physics
        settled_since = None
        next_report = self.now()
        while not self._stop.is_set():
            if self._poll_emergency():
                self._send("echo:Wait for heating cancelled (M108)")
                return
            t = self.now()
            cur = ph.t_hotend_c if heater == "hotend" else ph.t_bed_c
            tgt = ph.target_hotend_c if heater == "hotend" else ph.target_bed_c
            if tgt <= 0:
                return
            if wait_cool:
                if cur <= tgt + TEMP_WINDOW_C:
                    return
            elif abs(cur - tgt) <= TEMP_WINDOW_C or cur > tgt:
                settled_since = t if settled_since is None else settled_since
                if t - settled_since >= (RESIDENCY_S if heater == "hotend" else 0.0):
                    return
            else:
                settled_since = None
            if t >= next_report:
                left = "?" if settled_since is None else str(int(RESIDENCY_S - (t - settled_since)))
                self._send_temps(f" {{}} W:{left}")
                next_report = t + 1.0
            self.clock.sleep_until(t + 0.2, self._stop)

    def _busy(self, t: float, next_busy: float) -> float:
        """Send a keepalive when due; returns the next due time (inf when disabled)."""
        if self.busy_interval_s is None:
            return math.inf
        if t >= next_busy:
            self._send("echo:busy: processing")
            return t + self.busy_interval_s
        return next_busy

    def _first_busy(self) -> float:
        return math.inf if self.busy_interval_s is None else self.now() + self.busy_interval_s

    def _block_for(self, t_end: float) -> None:
        next_busy = self._first_busy()
        while not self._stop.is_set():
            self._poll_emergency()
            t = self.now()
            if t >= t_end:
                return
            next_busy = self._busy(t, next_busy)
            self.clock.sleep_until(min(t_end, next_busy), self._stop)

    def _planner_add(self, block: Block) -> None:
        """Queue a block; while the buffer is full the command (and its ok) waits, with busy:
        keepalives, as Marlin does."""
        self._wait_while(lambda: len(self._planner) >= PLANNER_BLOCKS)
        with self._lock:
            if block.moving:
                self.physics.steppers_on = True
            self._planner.append(block)
        self.clock.wake()

    def _wait_planner(self) -> None:
        self._wait_while(lambda: bool(self._planner) or self._executing)

    def _wait_while(self, busy) -> None:
        """Block the command while ``busy()``, sending busy: keepalives."""
        next_busy = self._first_busy()
        while busy() and not self._stop.is_set():
            self.clock.wait(lambda: not busy(), next_busy, self._stop)
            next_busy = self._busy(self.now(), next_busy)

    # ------------------------------------------------------------------ motion and reports
    def _execute_blocks(self) -> None:
        ph = self.physics
        while not self._stop.is_set():
            with self._lock:
                block = self._planner.popleft() if self._planner else None
                if block is None and self._executing:
                    t = self.clock.now()
                    with ph.lock:
                        ph.advance_to(t)
                        ph.moving = False
                        ph.set_flow(0.0)
                self._executing = block is not None
            self.clock.wake()
            if block is None:
                self.clock.wait(lambda: bool(self._planner), stop=self._stop)
                continue
            t0 = self.clock.now()
            with ph.lock:
                ph.advance_to(t0)
                if block.fan is not None:
                    ph.fan = block.fan
                if block.duration_s > 0:
                    ph.moving = block.moving
                    ph.set_flow(block.e_rate_mm_s)
            if block.duration_s > 0:
                self.clock.sleep_until(t0 + block.duration_s, self._stop)
                self.motion_time_s += block.duration_s

    def _report_temps(self) -> None:
        next_t = self.clock.now()
        while not self._stop.is_set():
            t = self.now()
            if self.autoreport_s > 0 and t >= next_t:
                self._send_temps(" {}")
                next_t = t + self.autoreport_s
            elif self.autoreport_s <= 0:
                next_t = t
            self.clock.sleep_until(t + min(0.5, self.autoreport_s or 0.5), self._stop)


class _Reset(Exception):
    pass


class _Cmd(NamedTuple):
    """One command as the handlers get it: its word, its letter arguments, the whole text."""

    word: str
    args: dict[str, float]
    text: str


# What the virtual Marlin does for each command word; a word in neither table is unknown.
_HANDLERS: dict[str, Callable[[VirtualPrinter, _Cmd], None]] = {
    **dict.fromkeys(("G0", "G1", "G2", "G3"), VirtualPrinter._move),
    "G28": VirtualPrinter._home,
    "G4": VirtualPrinter._dwell,
    **dict.fromkeys(("G90", "G91", "M82", "M83"), lambda pr, c: pr.motion.set_mode(c.word)),
    "G92": lambda pr, c: pr.motion.set_position(c.args),
    **dict.fromkeys(("M104", "M109", "M140", "M190"), VirtualPrinter._heater),
    "M105": VirtualPrinter._temperatures,
    "M155": VirtualPrinter._autoreport,
    **dict.fromkeys(("M106", "M107"), VirtualPrinter._fan),
    "M17": lambda pr, c: pr._steppers(True),
    **dict.fromkeys(("M18", "M84"), VirtualPrinter._steppers_off),
    "M400": lambda pr, c: pr._wait_planner(),
    "M114": lambda pr, c: pr._send(pr.motion.position_line()),
    "M115": VirtualPrinter._firmware_info,
    "M73": VirtualPrinter._progress,
    "M31": VirtualPrinter._print_time,
    "M27": lambda pr, c: pr._send("Not SD printing"),
    "M117": lambda pr, c: pr._send(f"echo:{c.text[4:].strip()}"),
    "M112": VirtualPrinter._halt,
    "M110": VirtualPrinter._line_number,
    "M75": VirtualPrinter._job_start,
}
# accepted and answered with a plain ok: settings the simulation has no use for
_ACCEPTED = frozenset(
    "M108 M76 M77 M201 M203 M204 M205 M220 M221 M900 M907 G21 M149 M501 M502 M300 M601 G29 "
    "M420".split()
)


def demo_gcode(layers: int = 6, size_mm: float = 20.0, layer_mm: float = 0.2) -> list[str]:
    """A small, complete print (heat, home, a hollow square with 2 walls and sparse infill,
    cool down) for demos and tests; extrusion amounts as a slicer would write them."""
    e_per_mm = 0.45 * layer_mm / (math.pi * (1.75 / 2) ** 2)
    out = [
        "; slicer-energy demo part",
        "M140 S60",
        "M104 S210",
        "M190 S60",
        "M109 S210",
        "G28",
        "G90",
        "M82",
        "G92 E0",
        "M106 S255",
    ]
    e = 0.0
    x0, y0 = 100.0 - size_mm / 2, 100.0 - size_mm / 2
    for k in range(layers):
        z = layer_mm * (k + 1)
        out.append(f"G1 Z{z:.2f} F600 ; layer {k + 1}")
        for w in range(2):
            o = w * 0.45
            pts = [
                (x0 + o, y0 + o),
                (x0 + size_mm - o, y0 + o),
                (x0 + size_mm - o, y0 + size_mm - o),
                (x0 + o, y0 + size_mm - o),
                (x0 + o, y0 + o),
            ]
            out.append(f"G0 X{pts[0][0]:.2f} Y{pts[0][1]:.2f} F6000")
            for (xa, ya), (xb, yb) in zip(pts, pts[1:], strict=False):
                e += math.dist((xa, ya), (xb, yb)) * e_per_mm
                out.append(f"G1 X{xb:.2f} Y{yb:.2f} E{e:.5f} F2400")
        step = 4.0
        xs = [x0 + 1.0 + i * step for i in range(int((size_mm - 2) / step) + 1)]
        for i, x in enumerate(xs):
            ya, yb = (
                (y0 + 1.0, y0 + size_mm - 1.0) if i % 2 == 0 else (y0 + size_mm - 1.0, y0 + 1.0)
            )
            out.append(f"G0 X{x:.2f} Y{ya:.2f} F6000")
            e += abs(yb - ya) * e_per_mm
            out.append(f"G1 X{x:.2f} Y{yb:.2f} E{e:.5f} F3600")
    out += ["M107", "M104 S0", "M140 S0", "G1 Z20 F600", "G28 X Y", "M84"]
    return out
