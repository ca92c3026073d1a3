"""FDM machine profile: kinematics, heaters, electrical loads, filament.

One dataclass per concern, loaded from a sourced TOML file in ``hardware/fdm/``
(see :mod:`slicer_energy.profiles`). Used by the G-code planner/timeline, the
geometry-based FDM prediction and calibration, so it holds what a printer *is*,
not how one print is sliced. Bounds are checked at load; unknown keys are errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ProfileError
from .profiles import (
    SourcedProfile,
    calibrated_dir,
    check_known_keys,
    check_range,
    find_in,
    find_profile,
    load_sourced_toml,
)
from .resources import data_dir
from .slicer_config import is_slicer_file
from .thermal import ElectricalModel, HeaterModel

FIRMWARES = ("marlin", "klipper")


@dataclass(frozen=True)
class Kinematics:
    """Motion limits as the firmware applies them (mm, mm/s, mm/s²).

    Classic jerk when ``junction_deviation_mm`` is 0 (Prusa MK3S firmware),
    otherwise Marlin junction deviation. The ``klipper_*`` values are used by
    the Klipper planner only.
    """

    max_feedrate_mm_s: tuple[float, float, float, float] = (500.0, 500.0, 12.0, 120.0)
    max_accel_mm_s2: tuple[float, float, float, float] = (9000.0, 9000.0, 500.0, 10000.0)
    accel_print_mm_s2: float = 1500.0
    accel_retract_mm_s2: float = 1500.0
    accel_travel_mm_s2: float = 1500.0
    jerk_mm_s: tuple[float, float, float, float] = (10.0, 10.0, 0.2, 2.5)
    junction_deviation_mm: float = 0.0
    min_extruding_rate_mm_s: float = 0.0
    min_travel_rate_mm_s: float = 0.0
    min_planner_speed_mm_s: float = 0.05
    block_buffer_size: int = 16
    # Klipper [printer] / [extruder]
    klipper_max_velocity_mm_s: float = 300.0
    klipper_max_accel_mm_s2: float = 3000.0
    klipper_minimum_cruise_ratio: float = 0.5
    klipper_square_corner_velocity_mm_s: float = 5.0
    klipper_max_z_velocity_mm_s: float = 25.0
    klipper_max_z_accel_mm_s2: float = 100.0
    klipper_max_extrude_only_velocity_mm_s: float = 50.0
    klipper_max_extrude_only_accel_mm_s2: float = 1500.0
    klipper_instantaneous_corner_velocity_mm_s: float = 1.0

    def with_(self, **kw: Any) -> Kinematics:
        return replace(self, **kw)


@dataclass(frozen=True)
class Filament:
    diameter_mm: float = 1.75
    density_g_cm3: float = 1.24
    cp_j_per_gk: float = 1.8

    @property
    def area_mm2(self) -> float:
        return math.pi * self.diameter_mm**2 / 4.0

    def mass_g(self, length_mm: float) -> float:
        return length_mm * self.area_mm2 * self.density_g_cm3 / 1000.0


@dataclass(frozen=True)
class FdmMachine:
    """Everything the time and energy models need to know about one FDM printer."""

    name: str
    firmware: str  # "marlin" | "klipper"
    kinematics: Kinematics
    hotend: HeaterModel
    bed: HeaterModel
    electrical: ElectricalModel
    filament: Filament
    homing_s: float = 10.0  # G28
    bed_leveling_s: float = 60.0  # G29 / G80 / BED_MESH_CALIBRATE
    firmware_retract_mm: float = 0.8  # G10/G11 length
    firmware_retract_speed_mm_s: float = 35.0
    build_volume_mm: tuple[float, float, float] | None = None  # x, y, z printable size
    source: dict[str, str] = field(default_factory=dict)  # dotted key -> source
    # dotted key -> (low, high): the assumed numbers' ranges, for uncertainty analyses
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    path: str = ""
    # real machine time / planner time outside heater waits, from calibration (1 = uncalibrated)
    time_scale: float = 1.0
    # seconds a real M109/M190 lasts beyond ideal control (residency, PID approach), calibrated
    wait_extra_s: float = 0.0
    calibrated: bool = False  # loaded from a calibrated overlay (``slicer-energy calibrate``)

    def with_kinematics(self, kin: Kinematics, firmware: str | None = None) -> FdmMachine:
        return replace(self, kinematics=kin, firmware=firmware or self.firmware)

    def with_numbers(self, numbers: dict[str, float]) -> FdmMachine:
        """A copy with heater or electrical numbers replaced by dotted key
        (``"bed.p_max_w"``, ``"electrical.psu_efficiency"``): an uncertainty analysis's drawn
        machine. Where the profile derives a heater's R and C from its assumed power (source
        ``derived: ...``), they follow it, so the measured gain R*P and time constant R*C hold.
        """
        parts: dict[str, Any] = {t: getattr(self, t) for t in ("hotend", "bed", "electrical")}
        for dotted, v in numbers.items():
            table, _, key = dotted.partition(".")
            obj = parts.get(table)
            if obj is None or not hasattr(obj, key):
                raise ProfileError(f"{self.name}: cannot set {dotted!r} (not a drawable number)")
            change: dict[str, float] = {key: float(v)}
            if key == "p_max_w" and self.source.get(f"{table}.r_k_per_w", "").startswith("derived"):
                change["r_k_per_w"] = obj.r_k_per_w * obj.p_max_w / float(v)
                change["c_j_per_k"] = obj.c_j_per_k * float(v) / obj.p_max_w
            parts[table] = replace(obj, **change)
        return replace(self, **parts)


_TOP = {
    "name",
    "aliases",
    "description",
    "firmware",
    "kinematics",
    "hotend",
    "bed",
    "electrical",
    "filament",
    "gcode",
    "klipper",
    "build",
    "source",
}


def _quad(where: str, t: dict, key: str, lo: float, hi: float) -> tuple[float, ...]:
    v = t.get(key)
    if not (isinstance(v, list) and len(v) == 4):
        raise ProfileError(f"{where}: {key} must be a list of 4 numbers [x, y, z, e], got {v!r}")
    return tuple(check_range(where, f"{key}[{i}]", x, lo, hi) for i, x in enumerate(v))


def machine_from_profile(prof: SourcedProfile) -> FdmMachine:
    """Build and bounds-check an :class:`FdmMachine` from a loaded sourced TOML.

    The tables are checked in a fixed order (so a profile with several faults always
    names the same one first).
    """
    where = str(prof.path)
    v = prof.values
    check_known_keys(where, v, _TOP)
    fw = v.get("firmware", "marlin")
    if fw not in FIRMWARES:
        raise ProfileError(f"{where}: firmware = {fw!r}; allowed: {', '.join(FIRMWARES)}")
    kin = _kinematics(where, v.get("kinematics", {}), v.get("klipper", {}))
    elec = _electrical(where, v.get("electrical"))
    filament = _filament(where, v.get("filament", {}))
    g = v.get("gcode", {})
    check_known_keys(f"{where} [gcode]", g, _GCODE_KEYS)
    hotend = _heater(where, v, "hotend")
    bed = _heater(where, v, "bed")
    return FdmMachine(
        name=str(v.get("name", prof.path.stem if prof.path else "fdm")),
        firmware=fw,
        kinematics=kin,
        hotend=hotend,
        bed=bed,
        electrical=elec,
        filament=filament,
        homing_s=check_range(where, "gcode.homing_s", g.get("homing_s", 10.0), 0, 600),
        bed_leveling_s=check_range(
            where, "gcode.bed_leveling_s", g.get("bed_leveling_s", 60.0), 0, 3600
        ),
        firmware_retract_mm=check_range(
            where, "gcode.firmware_retract_mm", g.get("firmware_retract_mm", 0.8), 0, 20
        ),
        firmware_retract_speed_mm_s=check_range(
            where,
            "gcode.firmware_retract_speed_mm_s",
            g.get("firmware_retract_speed_mm_s", 35.0),
            0.1,
            500,
        ),
        build_volume_mm=_build_volume(where, v.get("build", {})),
        source=dict(prof.sources),
        ranges=dict(prof.ranges),
        path=str(prof.path),
    )


_GCODE_KEYS = {"homing_s", "bed_leveling_s", "firmware_retract_mm", "firmware_retract_speed_mm_s"}
_KIN_KEYS = {
    "max_feedrate_mm_s",
    "max_accel_mm_s2",
    "accel_print_mm_s2",
    "accel_retract_mm_s2",
    "accel_travel_mm_s2",
    "jerk_mm_s",
    "junction_deviation_mm",
    "min_extruding_rate_mm_s",
    "min_travel_rate_mm_s",
    "min_planner_speed_mm_s",
    "block_buffer_size",
}
_KLIPPER_KEYS = {
    f.removeprefix("klipper_") for f in Kinematics.__dataclass_fields__ if f.startswith("klipper_")
}
# Klipper [printer] values that may be 0 (the others are 'above=0.' in Klipper)
_KLIPPER_MAY_BE_ZERO = {
    "minimum_cruise_ratio",
    "square_corner_velocity_mm_s",
    "instantaneous_corner_velocity_mm_s",
}
_ELECTRICAL_KEYS = {
    "p_electronics_w",
    "p_steppers_enabled_w",
    "p_steppers_moving_w",
    "p_fans_w",
    "psu_efficiency",
}


def _kinematics(where: str, k: dict, kl: dict) -> Kinematics:
    """The [kinematics] and [klipper] tables (omitted keys keep the Kinematics defaults)."""
    check_known_keys(where + " [kinematics]", k, _KIN_KEYS)
    kw: dict[str, Any] = {}
    # a zero feedrate or acceleration limit means no move ever ends (infinite time)
    for key, lo in (("max_feedrate_mm_s", 0.1), ("max_accel_mm_s2", 1.0), ("jerk_mm_s", 0.0)):
        if key in k:
            kw[key] = _quad(where, k, key, lo, 1e6)
    for key in ("accel_print_mm_s2", "accel_retract_mm_s2", "accel_travel_mm_s2"):
        if key in k:
            kw[key] = check_range(where, f"kinematics.{key}", k[key], 1.0, 1e6)
    for key, lo, hi in (
        ("junction_deviation_mm", 0.0, 1.0),
        ("min_extruding_rate_mm_s", 0, 100),
        ("min_travel_rate_mm_s", 0, 100),
        ("min_planner_speed_mm_s", 0, 10),
    ):
        if key in k:
            kw[key] = check_range(where, f"kinematics.{key}", k[key], lo, hi)
    if "block_buffer_size" in k:
        kw["block_buffer_size"] = int(
            check_range(where, "kinematics.block_buffer_size", k["block_buffer_size"], 2, 1024)
        )
    check_known_keys(where + " [klipper]", kl, _KLIPPER_KEYS)
    for key, val in kl.items():
        lo = 0.0 if key in _KLIPPER_MAY_BE_ZERO else 0.1
        kw["klipper_" + key] = check_range(where, f"klipper.{key}", val, lo, 1e6)
    return Kinematics(**kw)


def _heater(where: str, v: dict, name: str) -> HeaterModel:
    """The [hotend] or [bed] table as a first-order heater model."""
    h = v.get(name)
    if h is None:
        raise ProfileError(f"{where}: missing [{name}] table (p_max_w, r_k_per_w, c_j_per_k)")
    keys = {"p_max_w", "r_k_per_w", "c_j_per_k", "t_amb_c", "g_fan_w_per_k"}
    check_known_keys(f"{where} [{name}]", h, keys)
    return HeaterModel(
        p_max_w=check_range(where, f"{name}.p_max_w", h.get("p_max_w"), 1.0, 5000.0),
        r_k_per_w=check_range(where, f"{name}.r_k_per_w", h.get("r_k_per_w"), 0.01, 1000.0),
        c_j_per_k=check_range(where, f"{name}.c_j_per_k", h.get("c_j_per_k"), 0.1, 1e6),
        t_amb_c=check_range(where, f"{name}.t_amb_c", h.get("t_amb_c", 22.0), -20.0, 60.0),
        g_fan_w_per_k=check_range(
            where, f"{name}.g_fan_w_per_k", h.get("g_fan_w_per_k", 0.0), 0.0, 10.0
        ),
    )


def _electrical(where: str, e: dict | None) -> ElectricalModel:
    """The [electrical] table: every key required (no default wattage is safe to assume)."""
    if e is None:
        raise ProfileError(f"{where}: missing [electrical] table")
    check_known_keys(f"{where} [electrical]", e, _ELECTRICAL_KEYS)
    missing = sorted(_ELECTRICAL_KEYS - set(e))
    if missing:
        raise ProfileError(f"{where}: [electrical] lacks {', '.join(missing)}")
    return ElectricalModel(
        p_electronics_w=check_range(
            where, "electrical.p_electronics_w", e["p_electronics_w"], 0, 500
        ),
        p_steppers_enabled_w=check_range(
            where, "electrical.p_steppers_enabled_w", e["p_steppers_enabled_w"], 0, 500
        ),
        p_steppers_moving_w=check_range(
            where, "electrical.p_steppers_moving_w", e["p_steppers_moving_w"], 0, 500
        ),
        p_fans_w=check_range(where, "electrical.p_fans_w", e["p_fans_w"], 0, 200),
        psu_efficiency=check_range(
            where, "electrical.psu_efficiency", e["psu_efficiency"], 0.3, 1.0
        ),
    )


def _filament(where: str, fil: dict) -> Filament:
    """The optional [filament] table (defaults: the Filament dataclass's PLA values)."""
    check_known_keys(f"{where} [filament]", fil, {"diameter_mm", "density_g_cm3", "cp_j_per_gk"})
    return Filament(
        diameter_mm=check_range(
            where, "filament.diameter_mm", fil.get("diameter_mm", 1.75), 0.5, 5.0
        ),
        density_g_cm3=check_range(
            where, "filament.density_g_cm3", fil.get("density_g_cm3", 1.24), 0.5, 10.0
        ),
        cp_j_per_gk=check_range(
            where, "filament.cp_j_per_gk", fil.get("cp_j_per_gk", 1.8), 0.1, 10.0
        ),
    )


def _build_volume(where: str, b: dict) -> tuple[float, float, float] | None:
    """Optional ``[build] volume_mm = [x, y, z]``: parts larger than this are refused."""
    check_known_keys(f"{where} [build]", b, {"volume_mm"})
    if "volume_mm" not in b:
        return None
    v = b["volume_mm"]
    if not (isinstance(v, list) and len(v) == 3):
        raise ProfileError(f"{where}: build.volume_mm must be [x, y, z] in mm, got {v!r}")
    return tuple(
        check_range(where, f"build.volume_mm[{i}]", x, 1.0, 5000.0) for i, x in enumerate(v)
    )


def load_machine(name_or_path: str | Path) -> FdmMachine:
    """The FDM printer ``name_or_path`` names, whatever a maker has at hand.

    A name or alias (``ender3``, ``mk3s``) in ``hardware/fdm/``; a calibrated profile by name
    (the user's data folder, then the shipped examples in ``calib/``); a ``.toml`` path; a
    PrusaSlicer/SuperSlicer/Orca ``.ini``/``.json`` or 3MF project (``FILE.ini:NAME`` picks a
    bundle's printer); a Klipper ``.cfg``. A calibrated profile (written by
    ``slicer-energy calibrate``; it has a ``[calibration]`` table naming its ``base``) is an
    overlay: the base machine with the fitted values in place. This is the one place that
    resolves all of these, for ``gcode``, ``predict`` and calibration alike.
    """
    spec = str(name_or_path)
    if is_slicer_file(spec) or Path(spec).suffix.lower() == ".cfg":
        from . import machine_files  # imports this module

        if Path(spec).suffix.lower() == ".cfg":
            return machine_files.machine_from_klipper_file(spec)
        return machine_files.machine_from_slicer_file(spec)
    p = find_in(machine_roots(), spec, "; or give a .toml, slicer .ini/.3mf/.json or .cfg path")
    prof = load_sourced_toml(p)
    if "calibration" in prof.values:
        return _overlay_calibration(prof)
    return machine_from_profile(prof)


def machine_roots() -> list[tuple[str, Path]]:
    """Where printer names are looked up, in order: shipped printers, the user's calibrated
    profiles, the shipped calibrated examples."""
    return [
        ("printers in hardware/fdm/", data_dir("hardware") / "fdm"),
        (f"calibrated in {calibrated_dir()}", calibrated_dir()),
        ("calibrated examples in calib/", data_dir("calib")),
    ]


OVERLAY_TABLES = ("hotend", "bed", "electrical", "filament", "gcode")


def _overlay_calibration(prof: SourcedProfile) -> FdmMachine:
    where = str(prof.path)
    cal = prof.values["calibration"]
    base = cal.get("base")
    if not isinstance(base, str) or not base:
        raise ProfileError(f"{where}: [calibration] base must name the machine profile it refines")
    if base.endswith(".toml") and not Path(base).is_absolute() and prof.path is not None:
        cand = Path(prof.path).parent / base
        base = str(cand) if cand.is_file() else base
    base_prof = load_sourced_toml(find_profile("hardware", base, "fdm"))
    if "calibration" in base_prof.values:
        raise ProfileError(f"{where}: base {base!r} is itself a calibrated profile")
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base_prof.values.items()}
    sources = dict(base_prof.sources)
    ranges = dict(base_prof.ranges)
    for t in OVERLAY_TABLES:
        over = prof.values.get(t, {})
        values.setdefault(t, {}).update(over)
        sources.update({k: v for k, v in prof.sources.items() if k.startswith(t + ".")})
        for k in over:  # a calibrated number replaces the assumed one and its range
            ranges.pop(f"{t}.{k}", None)
    values["name"] = prof.values.get("name", f"{values.get('name', 'fdm')}-calibrated")
    m = machine_from_profile(SourcedProfile(values, sources, prof.path, ranges))
    ts = check_range(where, "calibration.time_scale", cal.get("time_scale", 1.0), 0.2, 5.0)
    extra = check_range(where, "calibration.wait_extra_s", cal.get("wait_extra_s", 0.0), 0, 600)
    return replace(m, time_scale=ts, wait_extra_s=extra, calibrated=True)
