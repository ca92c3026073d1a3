"""Settings from the slicers makers already use, as flat ``key -> text`` maps.

Reads what PrusaSlicer, SuperSlicer and OrcaSlicer/Bambu Studio write, so ``--printer`` and
``--preset`` take a maker's own files instead of asking them to retype numbers:

* an exported config ``.ini`` (flat ``key = value`` lines, printer + print + filament);
* a config or vendor bundle ``.ini`` with ``[printer:NAME]``/``[print:NAME]``/
  ``[filament:NAME]`` sections and ``inherits = a; b`` chains (resolved as PrusaSlicer's
  PresetBundle does: parents left to right, then the section's own keys); a section is
  picked with ``FILE.ini:NAME``;
* a 3MF project with embedded settings (PrusaSlicer's ``Metadata/Slic3r_PE.config``,
  ``; key = value`` lines, or Orca/Bambu's ``Metadata/project_settings.config``, JSON);
* an OrcaSlicer/Bambu Studio preset ``.json``.

Orca/Bambu key names are mapped to PrusaSlicer's (``ORCA_KEYS``) so one mapping to the
project's profiles serves all. What the values mean is decided by the loaders
(:mod:`slicer_energy.machine_files`, :mod:`slicer_energy.fdm.slicer_preset`).
"""

from __future__ import annotations

import configparser
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ProfileError

SUFFIXES = (".ini", ".3mf", ".json")
KINDS = ("printer", "print", "filament")
_3MF_CONFIGS = ("Metadata/Slic3r_PE.config", "Metadata/project_settings.config")

# OrcaSlicer / Bambu Studio key -> PrusaSlicer key (same meaning and unit; Orca source:
# OrcaSlicer src/libslic3r/PrintConfig.cpp, where these options replaced the Slic3r names).
ORCA_KEYS = {
    "printable_area": "bed_shape",
    "printable_height": "max_print_height",
    "nozzle_temperature": "temperature",
    "nozzle_temperature_initial_layer": "first_layer_temperature",
    "hot_plate_temp": "bed_temperature",
    "hot_plate_temp_initial_layer": "first_layer_bed_temperature",
    "wall_loops": "perimeters",
    "top_shell_layers": "top_solid_layers",
    "bottom_shell_layers": "bottom_solid_layers",
    "top_shell_thickness": "top_solid_min_thickness",
    "bottom_shell_thickness": "bottom_solid_min_thickness",
    "sparse_infill_density": "fill_density",
    "sparse_infill_pattern": "fill_pattern",
    "initial_layer_print_height": "first_layer_height",
    "outer_wall_speed": "external_perimeter_speed",
    "inner_wall_speed": "perimeter_speed",
    "sparse_infill_speed": "infill_speed",
    "internal_solid_infill_speed": "solid_infill_speed",
    "top_surface_speed": "top_solid_infill_speed",
    "gap_infill_speed": "gap_fill_speed",
    "support_speed": "support_material_speed",
    "support_interface_speed": "support_material_interface_speed",
    "initial_layer_speed": "first_layer_speed",
    "retraction_length": "retract_length",
    "retraction_speed": "retract_speed",
    "z_hop": "retract_lift",
    "line_width": "extrusion_width",
    "outer_wall_line_width": "external_perimeter_extrusion_width",
    "inner_wall_line_width": "perimeter_extrusion_width",
    "sparse_infill_line_width": "infill_extrusion_width",
    "internal_solid_infill_line_width": "solid_infill_extrusion_width",
    "top_surface_line_width": "top_infill_extrusion_width",
    "initial_layer_line_width": "first_layer_extrusion_width",
    "support_line_width": "support_material_extrusion_width",
    "enable_support": "support_material",
    "slow_down_layer_time": "slowdown_below_layer_time",
    "slow_down_min_speed": "min_print_speed",
    "wall_generator": "perimeter_generator",
}


@dataclass(frozen=True)
class SlicerConfig:
    """Settings as the slicer wrote them (PrusaSlicer key names), and where they came from."""

    values: dict[str, str]
    where: str  # "FILE.ini [printer:NAME]", "FILE.3mf Metadata/Slic3r_PE.config", ...

    def get(self, key: str) -> str | None:
        """The value of ``key`` (first extruder's of a per-extruder list), None when unset."""
        v = self.values.get(key)
        if v is None or v.strip() in ("", "nil"):
            return None
        return v.split(",")[0].strip() if _PER_EXTRUDER.match(v) else v.strip()


_PER_EXTRUDER = re.compile(r"^\s*-?[\d.]+%?(\s*,\s*-?[\d.]+%?)+\s*$")


def split_spec(spec: str) -> tuple[Path, str | None]:
    """``"bundle.ini:Original Prusa MINI"`` -> (path, section); a plain path -> (path, None)."""
    for suffix in SUFFIXES:
        i = spec.lower().find(suffix + ":")
        if i > 0:
            return Path(spec[: i + len(suffix)]), spec[i + len(suffix) + 1 :].strip() or None
    return Path(spec), None


def is_slicer_file(spec: str) -> bool:
    """Whether ``spec`` names a slicer settings file (by suffix, with or without ``:NAME``)."""
    return split_spec(spec)[0].suffix.lower() in SUFFIXES


def read_slicer_config(spec: str, kind: str) -> SlicerConfig:
    """The ``kind`` settings (printer, print or filament) of ``spec``; a flat file or a 3MF
    holds all three. Raises :class:`ProfileError` naming the file (and what exists in it)."""
    path, name = split_spec(spec)
    if not path.is_file():
        raise ProfileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".3mf":
        return _read_3mf(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    if suffix == ".json":
        return SlicerConfig(_from_json(text, str(path)), str(path))
    if not re.search(r"^\[(printer|print|filament):", text, re.MULTILINE):
        return SlicerConfig(_flat(text), str(path))
    return _bundle_section(path, text, kind, name)


def bundle_sections(path: Path, kind: str) -> list[str]:
    """Names of the presets of ``kind`` a bundle offers (abstract ``*name*`` ones left out)."""
    cp = _parser(path.read_text(encoding="utf-8", errors="replace"), str(path))
    prefix = f"{kind}:"
    return [
        s[len(prefix) :]
        for s in cp.sections()
        if s.startswith(prefix) and not s[len(prefix) :].startswith("*")
    ]


def _parser(text: str, where: str) -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";")
    )
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        msg = str(exc).splitlines()[0]
        raise ProfileError(f"{where}: not a PrusaSlicer/SuperSlicer .ini: {msg}") from None
    return cp


def _flat(text: str) -> dict[str, str]:
    """``key = value`` lines (an exported config, or a 3MF's ``; key = value`` lines)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*;?\s*([A-Za-z0-9_]+)\s*=\s?(.*)$", line)
        if m:
            k = m.group(1)
            out[ORCA_KEYS.get(k, k)] = m.group(2).strip()
    return out


def _from_json(text: str, where: str) -> dict[str, str]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: not an OrcaSlicer/Bambu Studio preset (a JSON object)")
    out = {}
    for k, v in raw.items():
        if isinstance(v, list):
            v = ",".join(str(x) for x in v) if k == "printable_area" else (v[0] if v else "")
        if isinstance(v, (str, int, float)):
            out[ORCA_KEYS.get(k, k)] = str(v)
    return out


def _read_3mf(path: Path) -> SlicerConfig:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            for member in _3MF_CONFIGS:
                if member in names:
                    text = z.read(member).decode("utf-8", errors="replace")
                    values = (
                        _from_json(text, f"{path} {member}")
                        if text.lstrip().startswith("{")
                        else _flat(text)
                    )
                    return SlicerConfig(values, f"{path} {member}")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ProfileError(f"{path}: not a 3MF project: {exc}") from None
    raise ProfileError(
        f"{path}: no slicer settings inside (looked for {' and '.join(_3MF_CONFIGS)}); "
        "save the project from the slicer (File > Save Project) or give its exported .ini"
    )


def _bundle_section(path: Path, text: str, kind: str, name: str | None) -> SlicerConfig:
    cp = _parser(text, str(path))
    names = bundle_sections(path, kind)
    if name is None and len(names) == 1:
        name = names[0]
    if name is None or not cp.has_section(f"{kind}:{name}"):
        shown = "; ".join(names[:8]) + (f"; ... ({len(names)} in all)" if len(names) > 8 else "")
        what = f"no [{kind}:{name}]" if name else f"a bundle of {len(names)} {kind} presets"
        raise ProfileError(
            f"{path}: {what}; pick one as '{path}:NAME' (list: slicer-energy profiles --from "
            f"{path}): {shown or '(none)'}"
        )
    return SlicerConfig(_resolve(cp, kind, name, str(path)), f"{path} [{kind}:{name}]")


def _resolve(cp: configparser.RawConfigParser, kind: str, name: str, where: str, depth: int = 0):
    """A section's keys with its ``inherits`` chain applied (parents left to right)."""
    sec = f"{kind}:{name}"
    if not cp.has_section(sec) or depth > 20:
        raise ProfileError(f"{where}: [{sec}] is inherited but not defined (or loops)")
    own = dict(cp.items(sec))
    out: dict[str, str] = {}
    for parent in (p.strip() for p in own.get("inherits", "").split(";")):
        if parent:
            out.update(_resolve(cp, kind, parent, where, depth + 1))
    out.update(own)
    return out
