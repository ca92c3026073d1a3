"""Print settings from a slicer's own files, in the layout of a ``hardware/fdm-print`` preset.

A PrusaSlicer/SuperSlicer ``.ini`` (or a bundle's ``[print:NAME]`` with its filament, or an
Orca/Bambu preset, or a 3MF project) becomes the same tables a preset TOML holds, every
value sourced by the file and key it came from, so :func:`settings.preset_from_profile`
checks it like any preset. Keys the file does not set keep the default preset's value and
source. PrusaSlicer's conventions for relative values are applied: a speed in % of another
speed, a width in % of the nozzle, an automatic width (0) as PrusaSlicer computes it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import SettingsError
from ..profiles import SourcedProfile, find_profile, load_sourced_toml
from ..slicer_config import SlicerConfig, read_slicer_config, split_spec
from .settings import arachne_default

# (table, key) <- slicer key; "% of" speeds name the key the percentage applies to
# (PrusaSlicer 2.5 PrintConfig.cpp option tooltips: "If expressed as percentage ...").
_NUMBERS = {
    ("layer", "height_mm"): "layer_height",
    ("layer", "first_layer_height_mm"): "first_layer_height",
    ("shell", "top_min_thickness_mm"): "top_solid_min_thickness",
    ("shell", "bottom_min_thickness_mm"): "bottom_solid_min_thickness",
    ("width", "nozzle_mm"): "nozzle_diameter",
    ("speed", "perimeter_mm_s"): "perimeter_speed",
    ("speed", "infill_mm_s"): "infill_speed",
    ("speed", "bridge_mm_s"): "bridge_speed",
    ("speed", "gap_fill_mm_s"): "gap_fill_speed",
    ("speed", "support_mm_s"): "support_material_speed",
    ("speed", "travel_mm_s"): "travel_speed",
    ("speed", "travel_z_mm_s"): "travel_speed_z",
    ("speed", "max_print_mm_s"): "max_print_speed",
    ("acceleration", "perimeter_mm_s2"): "perimeter_acceleration",
    ("acceleration", "infill_mm_s2"): "infill_acceleration",
    ("acceleration", "bridge_mm_s2"): "bridge_acceleration",
    ("acceleration", "first_layer_mm_s2"): "first_layer_acceleration",
    ("acceleration", "default_mm_s2"): "default_acceleration",
    ("retraction", "length_mm"): "retract_length",
    ("retraction", "speed_mm_s"): "retract_speed",
    ("retraction", "lift_mm"): "retract_lift",
    ("retraction", "min_travel_mm"): "retract_before_travel",
    ("cooling", "min_layer_time_s"): "slowdown_below_layer_time",
    ("cooling", "min_print_speed_mm_s"): "min_print_speed",
    ("skirt", "distance_mm"): "skirt_distance",
    ("skirt", "min_length_mm"): "min_skirt_length",
    ("skirt", "brim_width_mm"): "brim_width",
    ("shell", "wall_transition_angle_deg"): "wall_transition_angle",
    ("support", "threshold_deg"): "support_material_threshold",
    ("support", "spacing_mm"): "support_material_spacing",
    ("support", "interface_spacing_mm"): "support_material_interface_spacing",
    ("support", "contact_distance_mm"): "support_material_contact_distance",
    ("temperature", "hotend_c"): "temperature",
    ("temperature", "first_layer_hotend_c"): "first_layer_temperature",
    ("temperature", "bed_c"): "bed_temperature",
    ("temperature", "first_layer_bed_c"): "first_layer_bed_temperature",
}
_RELATIVE_SPEEDS = {
    ("speed", "external_perimeter_mm_s"): ("external_perimeter_speed", "perimeter_speed"),
    ("speed", "small_perimeter_mm_s"): ("small_perimeter_speed", "perimeter_speed"),
    ("speed", "solid_infill_mm_s"): ("solid_infill_speed", "infill_speed"),
    ("speed", "top_solid_infill_mm_s"): ("top_solid_infill_speed", "solid_infill_speed"),
    ("speed", "support_interface_mm_s"): (
        "support_material_interface_speed",
        "support_material_speed",
    ),
    ("speed", "first_layer_mm_s"): ("first_layer_speed", "perimeter_speed"),
}
_INTS = {
    ("shell", "perimeters"): "perimeters",
    ("shell", "top_layers"): "top_solid_layers",
    ("shell", "bottom_layers"): "bottom_solid_layers",
    ("cooling", "disable_fan_first_layers"): "disable_fan_first_layers",
    ("skirt", "loops"): "skirts",
    ("skirt", "height_layers"): "skirt_height",
    ("support", "interface_layers"): "support_material_interface_layers",
}
# fraction <- (slicer key, whether a plain number there is a percentage)
_FRACTIONS = {
    ("shell", "infill_density"): ("fill_density", False),
    ("cooling", "fan_speed"): ("max_fan_speed", True),
    ("cooling", "bridge_flow_ratio"): ("bridge_flow_ratio", False),
}
_BOOLS = {
    ("retraction", "on_layer_change"): "retract_layer_change",
    ("retraction", "wipe"): "wipe",
    ("support", "enabled"): "support_material",
    ("support", "buildplate_only"): "support_material_buildplate_only",
}
# width key <- slicer key; an automatic width (0) is PrusaSlicer's Flow::auto_extrusion_width:
# 1.125 x nozzle for perimeters and infill, 1 x nozzle for top infill and support.
_WIDTHS = {
    "external_perimeter_mm": ("external_perimeter_extrusion_width", 1.125),
    "perimeter_mm": ("perimeter_extrusion_width", 1.125),
    "infill_mm": ("infill_extrusion_width", 1.125),
    "solid_infill_mm": ("solid_infill_extrusion_width", 1.125),
    "top_infill_mm": ("top_infill_extrusion_width", 1.0),
    "first_layer_mm": ("first_layer_extrusion_width", 1.125),
    "support_mm": ("support_material_extrusion_width", 1.0),
}
# slicer infill patterns the time model does not have -> the nearest one it has
_PATTERN_NEAREST = {
    "adaptivecubic": "cubic",
    "supportcubic": "cubic",
    "3dhoneycomb": "honeycomb",
    "alignedrectilinear": "rectilinear",
    "triangles": "grid",
    "stars": "grid",
    "zig-zag": "rectilinear",
    "crosshatch": "grid",
    "lightning": "line",
}
_SPEED_KEYS = {key: k for (t, k), key in _NUMBERS.items() if t == "speed"} | {
    key: k for (_t, k), (key, _ref) in _RELATIVE_SPEEDS.items()
}
# a value of 0 means "automatic/unlimited" in the slicer: keep the default preset's value
_ZERO_IS_AUTO = {"support_material_threshold", "travel_speed_z", "first_layer_height"}


def preset_profile(spec: str, default: str) -> SourcedProfile:
    """The print settings of a slicer file as a preset profile over preset ``default``."""
    cfg = read_slicer_config(spec, "print")
    path = split_spec(spec)[0]
    base = load_sourced_toml(find_profile("hardware", default, "fdm-print"))
    v: dict[str, Any] = copy.deepcopy(base.values)
    src = dict(base.sources)
    for (t, k), key in _NUMBERS.items():
        x = _number(cfg, key)
        if x is not None and not (x == 0 and key in _ZERO_IS_AUTO):
            _put(v, src, t, k, x, cfg, key)
    for (t, k), (key, ref) in _RELATIVE_SPEEDS.items():
        x = _number(cfg, key, of=v["speed"][_SPEED_KEYS[ref]])
        if x:
            _put(v, src, t, k, x, cfg, key)
    for (t, k), key in _INTS.items():
        x = _number(cfg, key)
        if x is not None:
            _put(v, src, t, k, int(x), cfg, key)
    for (t, k), (key, plain_is_percent) in _FRACTIONS.items():
        x = _number(cfg, key, of=1.0)
        if x is not None:
            percent = plain_is_percent and "%" not in (cfg.get(key) or "")
            _put(v, src, t, k, x / 100.0 if percent else x, cfg, key)
    for (t, k), key in _BOOLS.items():
        raw = cfg.get(key)
        if raw is not None:
            _put(v, src, t, k, raw.strip().lower() in ("1", "true"), cfg, key)
    _widths(v, src, cfg)
    _volumetric(v, src, cfg)
    _pattern(v, src, cfg)
    _arachne(v, src, cfg)
    v["name"] = split_spec(spec)[1] or cfg.get("print_settings_id") or path.stem
    v["description"] = f"print settings of {cfg.where}"
    v.pop("mirrors", None)
    return SourcedProfile(v, src, path)


def _number(cfg: SlicerConfig, key: str, of: float | None = None) -> float | None:
    """A number, or a percentage of ``of`` ("80%" of 50 -> 40); None when unset."""
    raw = cfg.get(key)
    if raw is None:
        return None
    m = re.fullmatch(r"\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*(%?)\s*", raw)
    if not m:
        raise SettingsError(f"{cfg.where}: {key} = {raw!r} is not a number")
    x = float(m.group(1))
    if m.group(2):
        if of is None:
            raise SettingsError(f"{cfg.where}: {key} = {raw!r}: a percentage is not allowed here")
        return x / 100.0 * of
    return x


def _put(v: dict, src: dict, table: str, key: str, x: Any, cfg: SlicerConfig, ini: str) -> None:
    v.setdefault(table, {})[key] = x
    src[f"{table}.{key}"] = f"{cfg.where}: {ini}"


def _widths(v: dict, src: dict, cfg: SlicerConfig) -> None:
    nozzle = float(v["width"]["nozzle_mm"])
    default = _number(cfg, "extrusion_width", of=nozzle) or 0.0
    for k, (key, auto) in _WIDTHS.items():
        w = _number(cfg, key, of=nozzle)
        if w is None and not default and cfg.get("extrusion_width") is None:
            continue  # the file says nothing about widths: keep the preset's
        if w:
            _put(v, src, "width", k, w, cfg, key)
        elif default:
            _put(v, src, "width", k, default, cfg, "extrusion_width")
        else:
            v["width"][k] = auto * nozzle
            src[f"width.{k}"] = (
                f"{cfg.where}: {key} = 0 (automatic): PrusaSlicer Flow::auto_extrusion_width, "
                f"{auto} x nozzle_diameter"
            )


def _volumetric(v: dict, src: dict, cfg: SlicerConfig) -> None:
    """Print ``max_volumetric_speed``, else the filament's (0 in both: unlimited)."""
    for key in ("max_volumetric_speed", "filament_max_volumetric_speed"):
        x = _number(cfg, key)
        if x:
            _put(v, src, "speed", "max_volumetric_mm3_s", x, cfg, key)
            return


def _pattern(v: dict, src: dict, cfg: SlicerConfig) -> None:
    raw = cfg.get("fill_pattern")
    if raw is None:
        return
    p = raw.strip().lower()
    if p in _PATTERN_NEAREST:
        v["shell"]["infill_pattern"] = _PATTERN_NEAREST[p]
        src["shell.infill_pattern"] = f"{cfg.where}: fill_pattern = {p}, modelled as the nearest"
    else:
        _put(v, src, "shell", "infill_pattern", p, cfg, "fill_pattern")


def _arachne(v: dict, src: dict, cfg: SlicerConfig) -> None:
    """The perimeter generator (Orca's ``wall_generator``; unset: the preset's, Arachne as
    in PrusaSlicer 2.5, although a PrusaSlicer 2.4 file, which has no such key, was sliced
    classic), and Arachne's bead and feature minima (mm or % of the nozzle; unset:
    PrusaSlicer 2.5's defaults for the file's nozzle)."""
    raw = cfg.get("perimeter_generator")
    if raw is not None:
        key = "perimeter_generator"
        _put(v, src, "shell", key, raw.strip().lower(), cfg, key)
    nozzle = float(v["width"]["nozzle_mm"])
    for k, key in (
        ("min_bead_width_mm", "min_bead_width"),
        ("min_feature_size_mm", "min_feature_size"),
    ):
        x = _number(cfg, key, of=nozzle)
        if x is not None:
            _put(v, src, "shell", k, round(x, 6), cfg, key)  # to the nm, as presets write it
        else:
            v["shell"][k] = arachne_default(k, nozzle)
            src[f"shell.{k}"] = f"{cfg.where}: {key} not set: PrusaSlicer 2.5's default"
