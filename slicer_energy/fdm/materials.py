"""Filament materials: the temperatures a print runs at and the filament's density.

``--material PETG`` names a file in ``hardware/fdm-material/`` (any case, or an alias),
each sourced from PrusaSlicer's vendor bundle; a slicer file's filament settings work too
(``FILE.ini``, ``FILE.ini:NAME`` for a bundle's ``[filament:NAME]``). A material replaces
the print preset's four temperatures (so heat-up and holding energy follow it) and the
printer profile's filament density and diameter (so grams follow it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ProfileError
from ..machine import FdmMachine, Filament
from ..profiles import check_range, find_in, load_sourced_toml
from ..resources import data_dir
from ..slicer_config import is_slicer_file, read_slicer_config
from .settings import PrintSettings

_TEMPS = {  # PrintSettings field <- (material TOML key, slicer key)
    "hotend_c": ("hotend_c", "temperature"),
    "first_layer_hotend_c": ("first_layer_hotend_c", "first_layer_temperature"),
    "bed_c": ("bed_c", "bed_temperature"),
    "first_layer_bed_c": ("first_layer_bed_c", "first_layer_bed_temperature"),
}


@dataclass(frozen=True)
class Material:
    """One filament: print temperatures (°C) and density (g/cm³), and where they came from."""

    name: str
    temperatures_c: dict[str, float]  # PrintSettings temperature field -> °C
    density_g_cm3: float
    diameter_mm: float
    path: str


def load_material(name_or_path: str) -> Material:
    """The material ``name_or_path`` names (see the module docstring)."""
    if is_slicer_file(name_or_path):
        return _from_slicer(name_or_path)
    p = find_in(
        [("materials in hardware/fdm-material/", data_dir("hardware") / "fdm-material")],
        name_or_path,
        "; or give a slicer .ini/.json/.3mf with filament settings",
    )
    prof = load_sourced_toml(p)
    where, v = str(p), prof.values
    t, f = v.get("temperature", {}), v.get("filament", {})
    missing = [k for k, _ in _TEMPS.values() if k not in t] + [
        k for k in ("density_g_cm3", "diameter_mm") if k not in f
    ]
    if missing:
        raise ProfileError(f"{where}: lacks {', '.join(missing)}")
    return Material(
        name=str(v.get("name", p.stem)),
        temperatures_c={
            field: check_range(where, f"temperature.{k}", t[k], 0, 500)
            for field, (k, _) in _TEMPS.items()
        },
        density_g_cm3=check_range(where, "filament.density_g_cm3", f["density_g_cm3"], 0.5, 10),
        diameter_mm=check_range(where, "filament.diameter_mm", f["diameter_mm"], 0.5, 5),
        path=where,
    )


def _from_slicer(spec: str) -> Material:
    cfg = read_slicer_config(spec, "filament")

    def num(key: str, lo: float, hi: float) -> float:
        raw = cfg.get(key)
        if raw is None:
            raise ProfileError(f"{cfg.where}: no {key}; is this a filament profile?")
        try:
            return check_range(cfg.where, key, float(raw), lo, hi)
        except ValueError:
            raise ProfileError(f"{cfg.where}: {key} = {raw!r} is not a number") from None

    return Material(
        name=cfg.get("filament_settings_id") or cfg.get("filament_type") or cfg.where,
        temperatures_c={field: num(key, 0, 500) for field, (_, key) in _TEMPS.items()},
        density_g_cm3=num("filament_density", 0.5, 10),
        diameter_mm=num("filament_diameter", 0.5, 5),
        path=cfg.where,
    )


def with_material(
    settings: PrintSettings, machine: FdmMachine, material: Material
) -> tuple[PrintSettings, FdmMachine]:
    """The preset with the material's temperatures, the printer with its filament."""
    fil = Filament(material.diameter_mm, material.density_g_cm3, machine.filament.cp_j_per_gk)
    return settings.with_overrides(**material.temperatures_c), replace(machine, filament=fil)
