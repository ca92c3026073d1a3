"""Print settings of an FDM job (how a part is sliced), loaded from a preset TOML.

A preset in ``hardware/fdm-print/`` mirrors one of PrusaSlicer 2.5's MK3S print
profiles (every number names the .ini key it came from), so a prediction and
PrusaSlicer's own estimate are like for like. The machine (kinematics, heaters)
is a separate profile; this is only what a slicer decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import SettingsError
from ..profiles import SourcedProfile, check_known_keys, find_in, load_sourced_toml
from ..resources import data_dir
from ..slicer_config import is_slicer_file

DEFAULT_PRESET = "0.20mm-quality"
PATTERNS = ("gyroid", "grid", "rectilinear", "honeycomb", "cubic", "line")

# field name -> (toml table, key, lo, hi); all numbers in mm, mm/s, mm/s², s, °C, fractions.
_SPEC: dict[str, tuple[str, str, float, float]] = {
    "layer_height_mm": ("layer", "height_mm", 0.01, 2.0),
    "first_layer_height_mm": ("layer", "first_layer_height_mm", 0.01, 2.0),
    "perimeters": ("shell", "perimeters", 0, 50),
    "top_layers": ("shell", "top_layers", 0, 200),
    "bottom_layers": ("shell", "bottom_layers", 0, 200),
    "top_min_thickness_mm": ("shell", "top_min_thickness_mm", 0, 50),
    "bottom_min_thickness_mm": ("shell", "bottom_min_thickness_mm", 0, 50),
    "infill_density": ("shell", "infill_density", 0.0, 1.0),
    "nozzle_mm": ("width", "nozzle_mm", 0.1, 2.0),
    "w_external_perimeter_mm": ("width", "external_perimeter_mm", 0.05, 3.0),
    "w_perimeter_mm": ("width", "perimeter_mm", 0.05, 3.0),
    "w_infill_mm": ("width", "infill_mm", 0.05, 3.0),
    "w_solid_infill_mm": ("width", "solid_infill_mm", 0.05, 3.0),
    "w_top_infill_mm": ("width", "top_infill_mm", 0.05, 3.0),
    "w_first_layer_mm": ("width", "first_layer_mm", 0.05, 3.0),
    "w_support_mm": ("width", "support_mm", 0.05, 3.0),
    "v_external_perimeter_mm_s": ("speed", "external_perimeter_mm_s", 1, 1000),
    "v_perimeter_mm_s": ("speed", "perimeter_mm_s", 1, 1000),
    "v_small_perimeter_mm_s": ("speed", "small_perimeter_mm_s", 1, 1000),
    "v_infill_mm_s": ("speed", "infill_mm_s", 1, 1000),
    "v_solid_infill_mm_s": ("speed", "solid_infill_mm_s", 1, 1000),
    "v_top_solid_infill_mm_s": ("speed", "top_solid_infill_mm_s", 1, 1000),
    "v_bridge_mm_s": ("speed", "bridge_mm_s", 1, 1000),
    "v_gap_fill_mm_s": ("speed", "gap_fill_mm_s", 1, 1000),
    "v_support_mm_s": ("speed", "support_mm_s", 1, 1000),
    "v_support_interface_mm_s": ("speed", "support_interface_mm_s", 1, 1000),
    "v_first_layer_mm_s": ("speed", "first_layer_mm_s", 1, 1000),
    "v_travel_mm_s": ("speed", "travel_mm_s", 1, 2000),
    "v_travel_z_mm_s": ("speed", "travel_z_mm_s", 0.1, 200),
    "v_max_print_mm_s": ("speed", "max_print_mm_s", 1, 2000),
    "max_volumetric_mm3_s": ("speed", "max_volumetric_mm3_s", 0, 200),
    "a_perimeter_mm_s2": ("acceleration", "perimeter_mm_s2", 0, 1e5),
    "a_infill_mm_s2": ("acceleration", "infill_mm_s2", 0, 1e5),
    "a_bridge_mm_s2": ("acceleration", "bridge_mm_s2", 0, 1e5),
    "a_first_layer_mm_s2": ("acceleration", "first_layer_mm_s2", 0, 1e5),
    "a_default_mm_s2": ("acceleration", "default_mm_s2", 0, 1e5),
    "retract_mm": ("retraction", "length_mm", 0, 50),
    "retract_speed_mm_s": ("retraction", "speed_mm_s", 1, 500),
    "retract_lift_mm": ("retraction", "lift_mm", 0, 10),
    "retract_min_travel_mm": ("retraction", "min_travel_mm", 0, 100),
    "min_layer_time_s": ("cooling", "min_layer_time_s", 0, 600),
    "min_print_speed_mm_s": ("cooling", "min_print_speed_mm_s", 0.1, 500),
    "fan_speed": ("cooling", "fan_speed", 0, 1),
    "disable_fan_first_layers": ("cooling", "disable_fan_first_layers", 0, 1000),
    "bridge_flow_ratio": ("cooling", "bridge_flow_ratio", 0.1, 3),
    "skirt_loops": ("skirt", "loops", 0, 50),
    "skirt_distance_mm": ("skirt", "distance_mm", 0, 100),
    "skirt_height_layers": ("skirt", "height_layers", 0, 10000),
    "skirt_min_length_mm": ("skirt", "min_length_mm", 0, 10000),
    "brim_width_mm": ("skirt", "brim_width_mm", 0, 100),
    "support_threshold_deg": ("support", "threshold_deg", 0, 90),
    "support_spacing_mm": ("support", "spacing_mm", 0, 50),
    "support_interface_layers": ("support", "interface_layers", 0, 50),
    "support_interface_spacing_mm": ("support", "interface_spacing_mm", 0, 50),
    "support_contact_distance_mm": ("support", "contact_distance_mm", 0, 5),
    "support_xy_spacing_fraction": ("support", "xy_spacing_fraction", 0, 5),
    "support_first_layer_density": ("support", "first_layer_density", 0, 1),
    "support_first_layer_expansion_mm": ("support", "first_layer_expansion_mm", 0, 50),
    "hotend_c": ("temperature", "hotend_c", 0, 500),
    "first_layer_hotend_c": ("temperature", "first_layer_hotend_c", 0, 500),
    "bed_c": ("temperature", "bed_c", 0, 150),
    "first_layer_bed_c": ("temperature", "first_layer_bed_c", 0, 150),
}
_INTS = {
    "perimeters",
    "top_layers",
    "bottom_layers",
    "skirt_loops",
    "skirt_height_layers",
    "support_interface_layers",
    "disable_fan_first_layers",
}
_BOOLS = {
    "retract_on_layer_change": ("retraction", "on_layer_change"),
    "wipe": ("retraction", "wipe"),
    "supports": ("support", "enabled"),
    "support_buildplate_only": ("support", "buildplate_only"),
}
_STRINGS = {
    "infill_pattern": ("shell", "infill_pattern"),
    "solid_pattern": ("shell", "solid_pattern"),
    "perimeter_generator": ("shell", "perimeter_generator"),
}
PERIMETER_GENERATORS = ("arachne", "classic")
# Arachne's parameters, which a preset may leave out: [shell] key -> (lo, hi, PrusaSlicer
# 2.5's default (PrintConfig.cpp), whether that default is a fraction of the nozzle):
# min_bead_width 85 % and min_feature_size 25 % of the nozzle, wall_transition_angle 10°.
ARACHNE: dict[str, tuple[float, float, float, bool]] = {
    "min_bead_width_mm": (0.0, 5.0, 0.85, True),
    "min_feature_size_mm": (0.0, 5.0, 0.25, True),
    "wall_transition_angle_deg": (1.0, 59.0, 10.0, False),
}


def arachne_default(key: str, nozzle_mm: float) -> float:
    """PrusaSlicer 2.5's default of Arachne parameter ``key`` (:data:`ARACHNE`) for a nozzle,
    rounded to the nm as a preset writes it (85 % of 0.4 mm is 0.34 mm)."""
    _lo, _hi, default, of_nozzle = ARACHNE[key]
    return round(default * nozzle_mm, 6) if of_nozzle else default


@dataclass(frozen=True)
class PrintSettings:
    """Slicer settings of one job; field names carry units (mm, mm/s, mm/s², s, °C)."""

    name: str
    layer_height_mm: float
    first_layer_height_mm: float
    perimeters: int
    top_layers: int
    bottom_layers: int
    top_min_thickness_mm: float
    bottom_min_thickness_mm: float
    infill_density: float
    infill_pattern: str
    solid_pattern: str
    nozzle_mm: float
    w_external_perimeter_mm: float
    w_perimeter_mm: float
    w_infill_mm: float
    w_solid_infill_mm: float
    w_top_infill_mm: float
    w_first_layer_mm: float
    w_support_mm: float
    v_external_perimeter_mm_s: float
    v_perimeter_mm_s: float
    v_small_perimeter_mm_s: float
    v_infill_mm_s: float
    v_solid_infill_mm_s: float
    v_top_solid_infill_mm_s: float
    v_bridge_mm_s: float
    v_gap_fill_mm_s: float
    v_support_mm_s: float
    v_support_interface_mm_s: float
    v_first_layer_mm_s: float
    v_travel_mm_s: float
    v_travel_z_mm_s: float
    v_max_print_mm_s: float
    max_volumetric_mm3_s: float
    a_perimeter_mm_s2: float
    a_infill_mm_s2: float
    a_bridge_mm_s2: float
    a_first_layer_mm_s2: float
    a_default_mm_s2: float
    retract_mm: float
    retract_speed_mm_s: float
    retract_lift_mm: float
    retract_min_travel_mm: float
    retract_on_layer_change: bool
    wipe: bool
    min_layer_time_s: float
    min_print_speed_mm_s: float
    fan_speed: float
    disable_fan_first_layers: int
    bridge_flow_ratio: float
    skirt_loops: int
    skirt_distance_mm: float
    skirt_height_layers: int
    skirt_min_length_mm: float
    brim_width_mm: float
    supports: bool
    support_threshold_deg: float
    support_spacing_mm: float
    support_interface_layers: int
    support_interface_spacing_mm: float
    support_contact_distance_mm: float
    support_xy_spacing_fraction: float
    support_first_layer_density: float
    support_first_layer_expansion_mm: float
    support_buildplate_only: bool
    hotend_c: float
    first_layer_hotend_c: float
    bed_c: float
    first_layer_bed_c: float
    perimeter_generator: str  # "arachne" (PrusaSlicer 2.5's default) or "classic"
    min_bead_width_mm: float  # Arachne's parameters (ARACHNE)
    min_feature_size_mm: float
    wall_transition_angle_deg: float
    path: str = ""

    @property
    def top_layers_eff(self) -> int:
        """Top solid layers, raised so that they are at least ``top_min_thickness_mm`` thick."""
        n = math.ceil(self.top_min_thickness_mm / self.layer_height_mm - 1e-9)
        return max(self.top_layers, n) if self.top_layers > 0 else 0

    @property
    def bottom_layers_eff(self) -> int:
        n = math.ceil(self.bottom_min_thickness_mm / self.layer_height_mm - 1e-9)
        return max(self.bottom_layers, n) if self.bottom_layers > 0 else 0

    def spacing_mm(self, width_mm: float, height_mm: float | None = None) -> float:
        """Centre distance of neighbouring lines of a flow (PrusaSlicer's Flow::spacing).

        The bead is a rectangle with semicircular ends: area ``h·(w − h·(1 − π/4))``, so the
        spacing ``w − h·(1 − π/4)`` times ``h`` is exactly the bead's cross-section.
        """
        h = self.layer_height_mm if height_mm is None else height_mm
        return width_mm - h * (1.0 - math.pi / 4.0)

    def with_overrides(self, **kw: Any) -> PrintSettings:
        """A copy with some fields changed, re-validated (CLI options land here)."""
        out = replace(self, **{k: v for k, v in kw.items() if v is not None})
        validate(out)
        return out


def validate(s: PrintSettings) -> None:
    """Settings a printer cannot print are errors (layer height vs nozzle, negative infill...)."""
    for f, (_t, _key, lo, hi) in _SPEC.items():
        v = getattr(s, f)
        if not (lo <= v <= hi):
            raise SettingsError(f"{s.name}: {f} = {v} is outside the allowed range [{lo}, {hi}]")
    for f in ("layer_height_mm", "first_layer_height_mm"):
        h = getattr(s, f)
        if h > 0.8 * s.nozzle_mm + 1e-9:
            raise SettingsError(
                f"{f.replace('_mm', '')} {h} mm is above 80 % of the {s.nozzle_mm} mm nozzle "
                f"({0.8 * s.nozzle_mm:.2f} mm): the bead would not be pressed onto the layer below"
            )
    for f, (lo, hi, _d, _n) in ARACHNE.items():
        if not (lo <= getattr(s, f) <= hi):
            raise SettingsError(f"{s.name}: {f} = {getattr(s, f)} is outside [{lo}, {hi}]")
    if s.perimeter_generator not in PERIMETER_GENERATORS:
        raise SettingsError(
            f"{s.name}: perimeter generator {s.perimeter_generator!r}; "
            f"choose one of {', '.join(PERIMETER_GENERATORS)}"
        )
    if s.infill_pattern not in PATTERNS:
        raise SettingsError(
            f"{s.name}: infill pattern {s.infill_pattern!r}; choose one of {', '.join(PATTERNS)}"
        )
    for f in ("w_external_perimeter_mm", "w_perimeter_mm", "w_infill_mm", "w_solid_infill_mm"):
        if s.spacing_mm(getattr(s, f)) <= 0:
            raise SettingsError(f"{s.name}: {f} = {getattr(s, f)} is too thin for the layer")


def load_preset(name_or_path: str | Path = DEFAULT_PRESET) -> PrintSettings:
    """The print settings ``name_or_path`` names: a preset name in ``hardware/fdm-print/``
    (any case), a ``.toml`` path, or a slicer file (PrusaSlicer/SuperSlicer/Orca ``.ini``,
    ``FILE.ini:NAME`` for a bundle's print preset, ``.json``, a 3MF project) read over the
    default preset. Bounds checked, no unknown keys."""
    spec = str(name_or_path)
    if is_slicer_file(spec):
        from .slicer_preset import preset_profile

        return preset_from_profile(preset_profile(spec, DEFAULT_PRESET))
    path = find_in(
        [("presets in hardware/fdm-print/", data_dir("hardware") / "fdm-print")],
        spec,
        "; or give a .toml or a slicer .ini/.json/.3mf path",
    )
    return preset_from_profile(load_sourced_toml(path))


def preset_from_profile(prof: SourcedProfile) -> PrintSettings:
    """Build and check :class:`PrintSettings` from a preset's tables (TOML or slicer file)."""
    where = str(prof.path)
    v = prof.values
    tables: dict[str, set[str]] = {}
    for t, k, _lo, _hi in _SPEC.values():
        tables.setdefault(t, set()).add(k)
    for t, k in list(_BOOLS.values()) + list(_STRINGS.values()):
        tables.setdefault(t, set()).add(k)
    tables["shell"] |= set(ARACHNE)
    check_known_keys(where, v, set(tables) | {"name", "aliases", "description", "mirrors"})
    kw: dict[str, Any] = {}
    for t, keys in tables.items():
        if t not in v:
            raise SettingsError(f"{where}: missing table [{t}]")
        check_known_keys(f"{where} [{t}]", v[t], keys)
    for f, (t, k, _lo, _hi) in _SPEC.items():
        if k not in v[t]:
            raise SettingsError(f"{where}: [{t}] lacks {k}")
        x = v[t][k]
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise SettingsError(f"{where}: {t}.{k} must be a number, got {x!r}")
        kw[f] = int(x) if f in _INTS else float(x)
    for f, (t, k) in _BOOLS.items():
        kw[f] = bool(v[t].get(k, False))
    for f, (t, k) in _STRINGS.items():
        kw[f] = str(v[t].get(k, ""))
    kw["perimeter_generator"] = kw["perimeter_generator"] or "arachne"
    for k in ARACHNE:
        x = v["shell"].get(k)
        if x is None:
            x = arachne_default(k, kw["nozzle_mm"])
        elif isinstance(x, bool) or not isinstance(x, (int, float)):
            raise SettingsError(f"{where}: shell.{k} must be a number, got {x!r}")
        kw[k] = float(x)
    s = PrintSettings(name=str(v.get("name", Path(where).stem)), path=where, **kw)
    validate(s)
    return s


def settings_dict(s: PrintSettings) -> dict[str, Any]:
    """Plain dict of all fields (for JSON output)."""
    return {f.name: getattr(s, f.name) for f in fields(s)}
