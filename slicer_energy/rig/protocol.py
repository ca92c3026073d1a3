"""The Marlin/RepRap serial protocol as pure functions: format what we send, parse what we get.

No I/O and no clocks here (STYLE.md: "grow the pure-function shape, not the class"), so each
function is tested on real firmware lines (Marlin 1.x/2.x, Prusa, Klipper, RepRapFirmware,
Repetier; see ``tests/rig/test_rig_protocol.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- sending


def checksum(text: str) -> int:
    """XOR of all bytes of ``text``: the checksum Marlin verifies after ``*``."""
    cs = 0
    for b in text.encode("ascii", "replace"):
        cs ^= b
    return cs


def numbered_line(n: int, command: str) -> str:
    """``N<n> <command>*<checksum>`` (no newline), the form Marlin checks and can ask to resend."""
    body = f"N{n} {command}"
    return f"{body}*{checksum(body)}"


def strip_gcode(line: str) -> str:
    """A G-code line without ``;`` comments, ``(...)`` comments and surrounding blanks.

    Returns ``""`` for lines that carry no command. A ``;`` inside an ``M117``/``M118``
    message is a comment in Marlin too, so it is cut the same way.
    """
    s = line.split(";", 1)[0]
    if "(" in s:
        s = re.sub(r"\([^)]*\)", "", s)
    return s.strip()


def split_numbered(line: str) -> tuple[int | None, str, int | None]:
    """Split a received host line ``N12 G1 X1*34`` into (12, "G1 X1", 34); parts may be None.

    Used by the virtual printer; checksum is over ``N12 G1 X1``.
    """
    s = line.strip()
    cs = None
    if "*" in s:
        s, _, tail = s.rpartition("*")
        try:
            cs = int(tail.strip())
        except ValueError:
            cs = -1
    n = None
    m = re.match(r"N(-?\d+)\s*", s)
    if m:
        n = int(m.group(1))
        s = s[m.end() :]
    return n, s.strip(), cs


# --------------------------------------------------------------------------- receiving


def is_ok(line: str) -> bool:
    """``ok`` alone or followed by data (``ok T:..``, ``ok N12 P15 B3``)."""
    return line == "ok" or line.startswith("ok ") or line.startswith("ok\t")


_ADV_OK = re.compile(r"^ok\s+N(?P<n>\d+)\s+P(?P<p>\d+)\s+B(?P<b>\d+)")


@dataclass(frozen=True)
class AdvancedOk:
    """Marlin ADVANCED_OK: last line number, free planner blocks, free command slots."""

    line: int
    planner_free: int
    buffer_free: int


def parse_advanced_ok(line: str) -> AdvancedOk | None:
    m = _ADV_OK.match(line)
    if not m:
        return None
    return AdvancedOk(int(m.group("n")), int(m.group("p")), int(m.group("b")))


_RESEND = re.compile(r"^(?:resend|rs)\s*:?\s*N?\s*(\d+)", re.IGNORECASE)


def parse_resend(line: str) -> int | None:
    """Line number the firmware asks for again (``Resend: 12``, ``Resend:12``, ``rs N12``)."""
    m = _RESEND.match(line.strip())
    return int(m.group(1)) if m else None


def is_busy(line: str) -> bool:
    """Marlin host keepalive (``echo:busy: processing``, ``busy: paused for user``...)."""
    return "busy:" in line


def is_start(line: str) -> bool:
    """Boot banner: Marlin prints ``start`` after a reset."""
    return line.strip() == "start"


# Errors that are part of the resend dance, not failures.
_RECOVERABLE = ("checksum mismatch", "line number is not", "no checksum", "no line number")


def error_text(line: str) -> tuple[str, bool] | None:
    """(message, fatal) for ``Error:...`` or ``!! ...`` lines, else None.

    Checksum and line-number errors precede a ``Resend:`` and are not fatal; ``!!`` (Klipper,
    Marlin kill) and "halted"/"kill"/"stopped" are.
    """
    s = line.strip()
    if s.startswith("!!"):
        return s[2:].strip(), True
    low = s.lower()
    if not low.startswith("error:"):
        return None
    msg = s[6:].strip()
    m = msg.lower()
    if any(k in m for k in _RECOVERABLE):
        return msg, False
    return msg, any(k in m for k in _FATAL)


_FATAL = ("halted", "kill", "stopped", "runaway", "maxtemp", "mintemp", "heating failed")

# Temperatures ---------------------------------------------------------------

# Sensor letters seen in the wild: T hotend (active), T0..Tn, B bed, C chamber, P probe/PINDA,
# A ambient (Prusa), R redundant, L cooler, M board, S SoC (Marlin 2.1 temperature.cpp comment,
# quoted in cncjs), H0..Hn heaters (RepRapFirmware 1.x: "T:24.5 B:23.9 H0:23.9/0.0").
_TEMP = re.compile(
    r"(?<![A-Za-z@])(?P<name>T\d*|H\d+|B|C|P|A|R|L|M|S)\s*:\s*(?P<actual>-?\d+(?:\.\d+)?|inf|nan)"
    r"(?:\s*/\s*(?P<target>-?\d+(?:\.\d+)?))?"
)
_PWM = re.compile(
    r"(?<![A-Za-z])(?P<name>[BCT]?)@(?P<idx>\d*)\s*:\s*(?P<val>-?\d+(?:\.\d+)?)(?P<w>W)?"
)


@dataclass
class HeaterReading:
    """One sensor of a temperature report. ``pwm_raw`` is what the firmware printed after ``@:``
    (Marlin: 0..127 on AVR builds, Repetier 0..255); ``power_w`` only when it printed watts."""

    actual_c: float
    target_c: float | None = None
    pwm_raw: float | None = None
    power_w: float | None = None


@dataclass
class TempReport:
    heaters: dict[str, HeaterReading] = field(default_factory=dict)

    def get(self, name: str) -> HeaterReading | None:
        return self.heaters.get(name)


_WAIT_MARKER = re.compile(r"(?:^|\s)W:\s*(?:\?|\d+)")


def is_heating_wait_report(line: str) -> bool:
    """A temperature line printed by a running M109/M190 wait: Marlin appends ``W:`` (the
    residency seconds left, ``?`` before the window is reached; the corpus' Marlin 1.1.9 log
    shows ``... B@:127 W:?``). Plain M155 auto-reports carry no ``W:``."""
    return _WAIT_MARKER.search(line) is not None


def parse_temperatures(line: str) -> TempReport | None:
    """Parse an M105 answer or an M155 auto-report line; None if the line is not one.

    Names are normalised: the single-hotend ``T`` becomes ``T0``; when numbered tools are present
    the unnumbered ``T`` (a copy of the active tool) is dropped. ``B`` is the bed, ``C`` the
    chamber, ``P`` Prusa's PINDA probe, ``A`` Prusa's ambient sensor. Heater output after ``@:``
    (hotend), ``B@:`` (bed), ``@0:``/``@1:`` (per tool) is attached to its sensor; Prusa Buddy
    firmware prints watts (``@:26W``) and those go to ``power_w``.
    """
    s = line.strip()
    if s.startswith("ok"):
        s = s[2:]
    # Drop raw ADC values "(4012.00)" that SHOW_TEMP_ADC_VALUES adds, and Marlin's " W:?".
    s = re.sub(r"\(\s*-?[\d.]+\s*\)", " ", s)
    temps = _sensor_readings(s)
    if not any(k.startswith(("T", "H")) or k == "B" for k in temps):
        return None
    if re.search(r"(?<![A-Za-z])X\s*:", s) and re.search(r"(?<![A-Za-z])Y\s*:", s):
        return None  # an M114 position line, not temperatures
    numbered = any(re.fullmatch(r"T\d+", k) for k in temps)
    out = {
        ("T0" if name == "T" else name): h
        for name, h in temps.items()
        if not (name == "T" and numbered)
    }
    _attach_outputs(out, s)
    return TempReport(out)


def _sensor_readings(s: str) -> dict[str, HeaterReading]:
    """Each sensor's first ``NAME:actual /target`` in the line, as the firmware named it."""
    temps: dict[str, HeaterReading] = {}
    for m in _TEMP.finditer(s):
        name = m.group("name")
        try:
            actual = float(m.group("actual"))
        except ValueError:
            continue
        target = float(m.group("target")) if m.group("target") is not None else None
        if name not in temps:
            temps[name] = HeaterReading(actual, target)
    return temps


def _attach_outputs(out: dict[str, HeaterReading], s: str) -> None:
    """Heater outputs (``@:``, ``B@:``, ``@0:``..; PWM counts or, with ``W``, watts) onto the
    readings in ``out``; the unnumbered ``@:`` is the hotend's unless per-tool ones exist."""
    pwms: dict[str, tuple[float, bool]] = {}
    for m in _PWM.finditer(s):
        prefix, idx = m.group("name"), m.group("idx")
        key = (prefix or "T") + idx if (prefix or "T") == "T" else prefix
        pwms.setdefault(key, (float(m.group("val")), bool(m.group("w"))))
    has_numbered_pwm = any(re.fullmatch(r"T\d+", k) for k in pwms)
    for key, (val, watts) in pwms.items():
        if key == "T":
            if has_numbered_pwm:
                continue
            key = "T0"
        if key in out:
            if watts:
                out[key].power_w = val
            else:
                out[key].pwm_raw = val


# Firmware capabilities (M115) -------------------------------------------------


@dataclass
class FirmwareInfo:
    """M115 answer: the ``FIRMWARE_NAME`` line's fields and ``Cap:NAME:0|1`` lines."""

    fields: dict[str, str] = field(default_factory=dict)
    caps: dict[str, bool] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.fields.get("FIRMWARE_NAME", "")

    def cap(self, name: str) -> bool:
        return self.caps.get(name.upper(), False)


_M115_KEYS = re.compile(r"([A-Z_]+):")


def parse_m115(lines: list[str]) -> FirmwareInfo:
    """Parse the lines of an M115 answer (``FIRMWARE_NAME:Marlin 2.1 ... EXTRUDER_COUNT:1``)."""
    info = FirmwareInfo()
    for raw in lines:
        line = raw.strip()
        if line.startswith("ok"):
            line = line[2:].strip()
        if line.startswith("Cap:"):
            name, _, val = line[4:].partition(":")
            info.caps[name.strip().upper()] = val.strip() == "1"
        elif "FIRMWARE_NAME:" in line:
            line = line[line.index("FIRMWARE_NAME:") :]
            keys = list(_M115_KEYS.finditer(line))
            for i, m in enumerate(keys):
                end = keys[i + 1].start() if i + 1 < len(keys) else len(line)
                info.fields[m.group(1)] = line[m.end() : end].strip()
    return info


# Position, progress, print time ----------------------------------------------

_POS = re.compile(r"(?<![A-Za-z])([XYZE])\s*:\s*(-?\d+(?:\.\d+)?)")


def parse_position(line: str) -> dict[str, float] | None:
    """M114: ``X:10.00 Y:20.00 Z:0.30 E:1.50 Count X:800 ...`` -> {"X": 10.0, ...}."""
    s = line.split("Count", 1)[0]
    if s.startswith("ok"):
        s = s[2:]
    found = dict((k, float(v)) for k, v in _POS.findall(s))
    if not {"X", "Y", "Z"} <= found.keys():
        return None
    return found


_SD = re.compile(r"SD printing byte (\d+)\s*/\s*(\d+)")


def parse_sd_progress(line: str) -> tuple[int, int] | None | bool:
    """M27: (byte, total) while printing from SD; False for ``Not SD printing``; None otherwise."""
    if "Not SD printing" in line:
        return False
    m = _SD.search(line)
    return (int(m.group(1)), int(m.group(2))) if m else None


_M73 = re.compile(r"(?:Progress:\s*|Percent done:\s*)(\d+(?:\.\d+)?)")
_M73_REM = re.compile(r"(?:Remaining:\s*|remaining in mins:\s*)(\d+)")


def parse_m73(line: str) -> tuple[float, float | None] | None:
    """Progress echoes: Marlin ``echo:  M73 Progress: 12%; Time left: ..`` and Prusa
    ``NORMAL MODE: Percent done: 12; print time remaining in mins: 30`` -> (percent, min left)."""
    m = _M73.search(line)
    if not m:
        return None
    r = _M73_REM.search(line)
    return float(m.group(1)), (float(r.group(1)) if r else None)


_DUR = re.compile(r"(\d+)\s*(d|h|m|s|min|sec)\w*")


def parse_print_time_s(line: str) -> float | None:
    """M31 answers: Marlin 2 ``echo:Print time: 1h 2m 3s``, Marlin 1.0 ``echo:12 min, 5 sec``."""
    if "time" not in line.lower() and "min" not in line and "sec" not in line:
        return None
    s = line.split(":", 2)[-1] if "Print time" in line else line.replace("echo:", "")
    parts = _DUR.findall(s)
    if not parts:
        return None
    mult = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}
    return float(sum(int(v) * mult[u] for v, u in parts))
