"""Read the motion limits of a Klipper ``printer.cfg`` into an :class:`FdmMachine`.

Only what the planner needs: ``[printer]`` max_velocity, max_accel,
minimum_cruise_ratio (or the deprecated max_accel_to_decel, mapped as
``1 − atd/max_accel``, TH:627-660), square_corner_velocity, max_z_velocity,
max_z_accel; ``[extruder]`` max_extrude_only_velocity/_accel,
instantaneous_corner_velocity, filament_diameter. Defaults are Klipper's own
(TH:224-235, EX:204-235). Bounds are checked where the value is read, naming
file, section and option, like Klipper's ConfigWrapper.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProfileError
from ..machine import FdmMachine, Filament
from .klipper_macros import Macro, macros_of

# No Klipper limit (mm/s, mm/s², mm) is anywhere near this; beyond it squared speeds
# lose precision and the planner's times collapse to 0 s.
_MAX_OPTION = 1e7

# Klipper commands that probe the bed (klippy/extras: bed_mesh, probe, z_tilt, quad_gantry_level,
# screws_tilt_adjust). Klipper has no native G29/G80: on a Klipper printer they run whatever the
# printer.cfg's [gcode_macro G29] says, or nothing ("Unknown command").
_PROBING = frozenset(
    {
        "BED_MESH_CALIBRATE",
        "PROBE",
        "PROBE_ACCURACY",
        "PROBE_CALIBRATE",
        "QUAD_GANTRY_LEVEL",
        "Z_TILT_ADJUST",
        "SCREWS_TILT_CALCULATE",
        "DELTA_CALIBRATE",
    }
)


@dataclass(frozen=True)
class KlipperMachine(FdmMachine):
    """An :class:`FdmMachine` whose printer.cfg says what some commands take.

    ``command_s`` holds (command, seconds) for levelling commands the config defines
    as macros: a G29 that only loads a saved mesh (``BED_MESH_PROFILE LOAD=...``)
    takes no time, one that probes takes ``bed_leveling_s``. ``macros`` are its
    ``[gcode_macro]`` sections, which the analyser expands for PRINT_START and kin.
    """

    command_s: tuple[tuple[str, float], ...] = ()
    macros: tuple[Macro, ...] = ()


def _macro_probes(sections: dict[str, dict[str, str]], name: str, depth: int = 0) -> bool | None:
    """Whether macro ``name`` probes the bed (following macros it calls); None: cannot tell
    (a Jinja template decides at run time, or the nesting is too deep)."""
    sec = sections.get(f"gcode_macro {name.lower()}")
    if sec is None or depth > 8:
        return None
    body = sec.get("gcode", "")
    if "{" in body:
        return None
    unknown = False
    for line in body.splitlines():
        words = line.split()
        if not words:
            continue
        cmd = words[0].upper()
        if cmd in _PROBING:
            return True
        if f"gcode_macro {cmd.lower()}" in sections and cmd.lower() != name.lower():
            sub = _macro_probes(sections, cmd, depth + 1)
            if sub:
                return True
            unknown |= sub is None
    return None if unknown else False


def levelling_macros_s(sections: dict[str, dict[str, str]], leveling_s: float) -> dict[str, float]:
    """Seconds G29 / G80 take on this printer, for those its config defines as macros."""
    out = {}
    for cmd in ("G29", "G80"):
        probes = _macro_probes(sections, cmd)
        if probes is not None:
            out[cmd] = leveling_s if probes else 0.0
    return out


def parse_klipper_cfg(path: str | Path) -> dict[str, dict[str, str]]:
    """Sections -> options (lower case), ignoring comments and the SAVE_CONFIG block."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read Klipper config: {exc}") from None
    sections: dict[str, dict[str, str]] = {}
    cur: dict[str, str] | None = None
    key = None
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("#*#"):
            break
        line = re.split(r"\s[#;]|^[#;]", raw, maxsplit=1)[0].rstrip()
        if not line.strip():
            continue
        m = re.match(r"^\[([^\]]+)\]\s*$", line)
        if m:
            cur = sections.setdefault(m.group(1).strip().lower(), {})
            key = None
            continue
        if line[0].isspace() and cur is not None and key is not None:
            cur[key] += "\n" + line.strip()  # continuation (gcode macros)
            continue
        m = re.match(r"^([A-Za-z0-9_]+)\s*[:=]\s*(.*)$", line)
        if not m or cur is None:
            raise ProfileError(f"{path}:{n}: cannot parse Klipper config line {raw!r}")
        key = m.group(1).lower()
        cur[key] = m.group(2).strip()
    return sections


def _getfloat(path, sections, sec, opt, default, minval=None, maxval=None, above=None):
    raw = sections.get(sec, {}).get(opt)
    if raw is None:
        return default
    where = f"{_line_of(path, sec, opt)}: [{sec}] {opt} = {raw}"
    try:
        v = float(raw)
    except ValueError:
        raise ProfileError(f"{where} is not a number") from None
    if not math.isfinite(v) or abs(v) > _MAX_OPTION:  # Python's float() takes 'nan', 'inf'
        raise ProfileError(f"{where}: accepted: a finite number up to {_MAX_OPTION:g}")
    if minval is not None and v < minval:
        raise ProfileError(f"{where} must be >= {minval}")
    if maxval is not None and v > maxval:
        raise ProfileError(f"{where} must be <= {maxval}")
    if above is not None and v <= above:
        raise ProfileError(f"{where} must be above {above}")
    return v


def _line_of(path: Path, sec: str, opt: str) -> str:
    """'path:N' for the line that sets ``opt`` in ``[sec]`` (error messages only)."""
    cur = None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return str(path)
    for n, raw in enumerate(lines, 1):
        m = re.match(r"^\[([^\]]+)\]", raw)
        if m:
            cur = m.group(1).strip().lower()
        elif cur == sec and re.match(rf"^{re.escape(opt)}\s*[:=]", raw, re.IGNORECASE):
            return f"{path}:{n}"
    return str(path)


def machine_from_klipper_config(path: str | Path, base: FdmMachine) -> FdmMachine:
    """``base`` (heaters, electrical) with the kinematics of a Klipper printer.cfg."""
    path = Path(path)
    s = parse_klipper_cfg(path)
    if "printer" not in s:
        raise ProfileError(f"{path}: no [printer] section; is this a Klipper printer.cfg?")

    def g(sec, opt, default, **kw):
        return _getfloat(path, s, sec, opt, default, **kw)

    max_v = g("printer", "max_velocity", None, above=0.0)
    max_a = g("printer", "max_accel", None, above=0.0)
    if max_v is None or max_a is None:
        raise ProfileError(f"{path}: [printer] needs max_velocity and max_accel")
    mcr = g("printer", "minimum_cruise_ratio", None, minval=0.0, maxval=1.0)
    if mcr is None:
        atd = g("printer", "max_accel_to_decel", None, above=0.0)
        mcr = 0.5 if atd is None else 1.0 - min(1.0, atd / max_a)
    scv = g("printer", "square_corner_velocity", 5.0, minval=0.0)
    max_zv = g("printer", "max_z_velocity", max_v, above=0.0, maxval=max_v)
    max_za = g("printer", "max_z_accel", max_a, above=0.0, maxval=max_a)
    nozzle = g("extruder", "nozzle_diameter", 0.4, above=0.0)
    fil_d = g("extruder", "filament_diameter", base.filament.diameter_mm, minval=nozzle)
    area = 3.141592653589793 * fil_d**2 / 4
    def_eo_v = max_v * (4.0 * nozzle**2) / area  # EX:204-210 default
    def_eo_a = max_a * (4.0 * nozzle**2) / area
    eo_v = g("extruder", "max_extrude_only_velocity", def_eo_v, above=0.0)
    eo_a = g("extruder", "max_extrude_only_accel", def_eo_a, above=0.0)
    icv = g("extruder", "instantaneous_corner_velocity", 1.0, minval=0.0)
    kin = base.kinematics.with_(
        klipper_max_velocity_mm_s=max_v,
        klipper_max_accel_mm_s2=max_a,
        klipper_minimum_cruise_ratio=mcr,
        klipper_square_corner_velocity_mm_s=scv,
        klipper_max_z_velocity_mm_s=max_zv,
        klipper_max_z_accel_mm_s2=max_za,
        klipper_max_extrude_only_velocity_mm_s=eo_v,
        klipper_max_extrude_only_accel_mm_s2=eo_a,
        klipper_instantaneous_corner_velocity_mm_s=icv,
    )
    fil = Filament(fil_d, base.filament.density_g_cm3, base.filament.cp_j_per_gk)
    fields = {f: getattr(base, f) for f in FdmMachine.__dataclass_fields__}
    fields.update(
        kinematics=kin,
        firmware="klipper",
        filament=fil,
        name=f"{base.name}+{path.name}",
        path=f"{base.path} + {path}",
    )
    macros = levelling_macros_s(s, base.bed_leveling_s)
    return KlipperMachine(**fields, command_s=tuple(sorted(macros.items())), macros=macros_of(s))
