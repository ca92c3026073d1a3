"""An :class:`~slicer_energy.machine.FdmMachine` from a maker's own printer file.

A slicer's printer settings (PrusaSlicer/SuperSlicer/Orca ``.ini``/``.json``, a 3MF project)
or a Klipper ``printer.cfg`` say how the printer moves (machine limits, build volume,
firmware) but nothing about its heaters and electrical loads. Those come from a shipped
profile in ``hardware/fdm/``: the one whose name or alias is the file's ``printer_model``,
else the one with the nearest build volume, and then every value taken from it is marked as
an assumption naming that profile, so ``sources`` stays honest about what is guessed.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

from .errors import ProfileError
from .machine import FdmMachine, machine_from_profile
from .profiles import SourcedProfile, find_entry, load_sourced_toml, profile_index
from .resources import data_dir
from .slicer_config import SlicerConfig, read_slicer_config, split_spec

# the base profile's tables that the printer file cannot say anything about
_GUESSED_TABLES = ("hotend", "bed", "electrical", "gcode")
_AXES = ("x", "y", "z", "e")


def machine_from_slicer_file(spec: str) -> FdmMachine:
    """The printer settings of a slicer file (``FILE.ini``, ``FILE.ini:NAME``, ``.3mf``, ``.json``)
    over the heaters and electrical loads of the matching shipped profile."""
    cfg = read_slicer_config(spec, "printer")
    volume = _bed_volume(cfg)
    base, why = choose_base(cfg.get("printer_model"), volume)
    prof = _base_profile(base, why, cfg.where)
    v, src = prof.values, prof.sources
    kin = v.setdefault("kinematics", {})
    for key, ini in (("max_feedrate_mm_s", "feedrate"), ("max_accel_mm_s2", "acceleration")):
        quad = [_num(cfg, f"machine_max_{ini}_{a}") for a in _AXES]
        if all(q is not None for q in quad):
            kin[key] = quad
            src[f"kinematics.{key}"] = f"{cfg.where}: machine_max_{ini}_x/y/z/e"
    jerk = [_num(cfg, f"machine_max_jerk_{a}") for a in _AXES]
    if all(j is not None for j in jerk):
        kin["jerk_mm_s"] = jerk
        kin["junction_deviation_mm"] = 0.0
        src["kinematics.jerk_mm_s"] = f"{cfg.where}: machine_max_jerk_x/y/z/e (classic jerk)"
    extruding = _num(cfg, "machine_max_acceleration_extruding")
    for key, ini in (
        ("accel_print_mm_s2", "machine_max_acceleration_extruding"),
        ("accel_retract_mm_s2", "machine_max_acceleration_retracting"),
        ("accel_travel_mm_s2", "machine_max_acceleration_travel"),
    ):
        # PrusaSlicer: travel acceleration 0 or unset means the extruding one (Marlin 1 M204 S)
        x = _num(cfg, ini) or (extruding if key == "accel_travel_mm_s2" else None)
        if x:
            kin[key] = x
            src[f"kinematics.{key}"] = f"{cfg.where}: {ini}"
    flavor = (cfg.get("gcode_flavor") or "").lower()
    if flavor:
        v["firmware"] = "klipper" if flavor == "klipper" else "marlin"
        exact = flavor in ("klipper", "marlin", "marlin2")
        src["firmware"] = f"{cfg.where}: gcode_flavor = {flavor}" + (
            "" if exact else " (assumption: planned as Marlin)"
        )
    if volume is not None:
        v["build"] = {"volume_mm": list(volume)}
        src["build.volume_mm"] = f"{cfg.where}: bed_shape, max_print_height"
    fil = v.setdefault("filament", {})
    for key, ini in (("diameter_mm", "filament_diameter"), ("density_g_cm3", "filament_density")):
        x = _num(cfg, ini)
        if x:
            fil[key] = x
            src[f"filament.{key}"] = f"{cfg.where}: {ini}"
    path, section = split_spec(spec)
    v["name"] = section or cfg.get("printer_settings_id") or path.stem
    return machine_from_profile(SourcedProfile(v, src, path))


def machine_from_klipper_file(path: str) -> FdmMachine:
    """A Klipper ``printer.cfg``: its [printer]/[extruder] limits planned like Klipper, its
    [stepper_*] travel as the build volume, over the nearest shipped profile's heaters."""
    from .gcode.klipper_config import machine_from_klipper_config, parse_klipper_cfg

    p = Path(path)
    if not p.is_file():
        raise ProfileError(f"{p}: no such file")
    sections = parse_klipper_cfg(p)
    if "printer" not in sections:
        inc = [s.removeprefix("include ") for s in sections if s.startswith("include ")]
        hint = f" (it includes {', '.join(inc)}: give the file with [printer])" if inc else ""
        raise ProfileError(f"{p}: no [printer] section; is this a Klipper printer.cfg?{hint}")
    volume = _klipper_volume(sections)
    base, why = choose_base(None, volume)
    prof = _base_profile(base, why, str(p))
    m = machine_from_klipper_config(p, machine_from_profile(prof))
    k = m.kinematics
    # the geometry-based time model reads the Marlin-style limits: give it Klipper's
    kin = k.with_(
        max_feedrate_mm_s=(
            k.klipper_max_velocity_mm_s,
            k.klipper_max_velocity_mm_s,
            k.klipper_max_z_velocity_mm_s,
            k.klipper_max_extrude_only_velocity_mm_s,
        ),
        max_accel_mm_s2=(
            k.klipper_max_accel_mm_s2,
            k.klipper_max_accel_mm_s2,
            k.klipper_max_z_accel_mm_s2,
            k.klipper_max_extrude_only_accel_mm_s2,
        ),
        accel_print_mm_s2=k.klipper_max_accel_mm_s2,
        accel_travel_mm_s2=k.klipper_max_accel_mm_s2,
    )
    source = dict(m.source)
    for key in ("max_feedrate_mm_s", "max_accel_mm_s2", "accel_print_mm_s2", "accel_travel_mm_s2"):
        source[f"kinematics.{key}"] = f"{p}: [printer] max_velocity, max_accel, max_z_*; [extruder]"
    if volume is not None:
        source["build.volume_mm"] = f"{p}: [stepper_x/y/z] position_min..position_max"
    fields = {f: getattr(m, f) for f in type(m).__dataclass_fields__}
    fields.update(kinematics=kin, build_volume_mm=volume or m.build_volume_mm, source=source)
    return type(m)(**fields)


def choose_base(model: str | None, volume: tuple[float, float, float] | None) -> tuple[str, str]:
    """(shipped profile name, why): the profile named or aliased ``model``, else the one with
    the nearest build volume, else ``prusa-mk3s`` (the project's reference printer)."""
    entries = profile_index(data_dir("hardware") / "fdm")
    hit = find_entry(entries, model) if model else None
    if hit is not None:
        return hit.name, f"printer_model {model}"
    if volume is None:
        return "prusa-mk3s", "assumption: printer not recognised, no build volume given"
    best, dist = "prusa-mk3s", math.inf
    for e in entries:
        b = (load_sourced_toml(e.path).values.get("build") or {}).get("volume_mm")
        if b:
            d = sum(abs(math.log(x / y)) for x, y in zip(volume, b, strict=True))
            if d < dist:
                best, dist = e.name, d
    return best, "assumption: printer not recognised; the shipped profile of nearest build volume"


def _base_profile(base: str, why: str, where: str) -> SourcedProfile:
    """The shipped profile ``base`` with the sources of the values it lends marked."""
    prof = load_sourced_toml(data_dir("hardware") / "fdm" / f"{base}.toml")
    values = copy.deepcopy(prof.values)
    values.pop("aliases", None)
    sources = dict(prof.sources)
    for k, s in sources.items():
        if k.split(".")[0] in _GUESSED_TABLES:
            note = "assumption" if why.startswith("assumption") else "from"
            sources[k] = f"{note}: {base} profile for {where} ({why}); there: {s}"
    return SourcedProfile(values, sources, prof.path)


def _num(cfg: SlicerConfig, key: str) -> float | None:
    raw = cfg.get(key)
    if raw is None:
        return None
    try:
        x = float(raw)
    except ValueError:
        raise ProfileError(f"{cfg.where}: {key} = {raw!r} is not a number") from None
    if not math.isfinite(x):
        raise ProfileError(f"{cfg.where}: {key} = {raw!r} is not a finite number")
    return x


def _bed_volume(cfg: SlicerConfig) -> tuple[float, float, float] | None:
    """x, y from the ``bed_shape`` polygon ("0x0,250x0,250x210,0x210"), z from max_print_height."""
    shape, height = cfg.values.get("bed_shape"), _num(cfg, "max_print_height")
    if not shape or not height:
        return None
    pts = re.findall(r"(-?[\d.]+)\s*x\s*(-?[\d.]+)", shape)
    if len(pts) < 3:
        raise ProfileError(f"{cfg.where}: bed_shape = {shape!r} is not a polygon 'XxY,XxY,...'")
    xs, ys = [float(a) for a, _ in pts], [float(b) for _, b in pts]
    return (max(xs) - min(xs), max(ys) - min(ys), height)


def _klipper_volume(sections: dict[str, dict[str, str]]) -> tuple[float, float, float] | None:
    out = []
    for axis in "xyz":
        sec = sections.get(f"stepper_{axis}", {})
        try:
            out.append(float(sec["position_max"]) - float(sec.get("position_min", 0.0)))
        except (KeyError, ValueError):
            return None  # a delta or an unusual config: keep the base profile's volume
    return out[0], out[1], out[2]
