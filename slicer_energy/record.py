"""The one JSON record of a prediction, whatever made it (schema ``schema/record-1.json``).

``predict`` (every process), ``gcode``, ``compare`` rows and ``batch`` rows all emit what
:func:`record` returns: the same keys and units (seconds, kWh, grams, millimetres), one set
of phase and component names, and the process's own figures in one sub-object (``fdm``,
``sintering`` or ``baseline``; the others are ``null``). Other programs (an OctoPrint
plugin) import this module and :func:`schema` rather than copying the layout.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from .costs import Costs, cost_fields
from .estimate import J_PER_KWH, Estimate

SCHEMA_VERSION = 1

# The models' own phase names -> the record's (heat_up, homing_leveling, print, dwell,
# cool_down): a G-code "wait" is the FDM model's heat-up, a sintering "build" its print.
PHASES = {
    "wait": "heat_up",
    "heat_up": "heat_up",
    "warmup": "heat_up",
    "homing": "homing_leveling",
    "leveling": "homing_leveling",
    "homing_leveling": "homing_leveling",
    "motion": "print",
    "print": "print",
    "build": "print",
    "dwell": "dwell",
    "cooldown": "cool_down",
}
# The models' component names -> the record's (the chamber or platform heater of a
# sintering machine is "heaters"; its inert gas circulation "gas").
COMPONENTS = {
    "bed": "bed",
    "hotend": "hotend",
    "heaters": "heaters",
    "platform_heater": "heaters",
    "electronics": "electronics",
    "steppers": "steppers",
    "fans": "fans",
    "laser": "laser",
    "inert_gas": "gas",
    "gas_recirculation": "gas",
    "chiller": "chiller",
}
BASELINES = ("injection-moulding", "casting")
# figures of Estimate.extra that the record lifts to its top level or renames
_LIFTED = {"print_time_s", "filament_mm", "kwh_per_kg", "powder_waste_g", "case", "warnings"}
_FDM_LIFTED = {
    "filament_by_feature_mm",
    "layers",
    "slicer_estimate_s",
    "unknown_commands",
    "plate",
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema every record validates against (shipped in the package)."""
    text = resources.files(__package__).joinpath("schema", "record-1.json").read_text("utf-8")
    return json.loads(text)


def _renamed(values: dict[str, float], names: dict[str, str], scale: float = 1.0) -> dict:
    out: dict[str, float] = {}
    for k, v in values.items():
        if k not in names:
            raise ValueError(f"bug: {k!r} has no record name (add it to record.py)")
        out[names[k]] = out.get(names[k], 0.0) + float(v) * scale
    return out


def record(
    est: Estimate,
    costs: Costs | None = None,
    gcode: Any = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The record of ``est``: the part or G-code ``source`` it was predicted from, priced
    with ``costs``; ``gcode``, the :class:`~slicer_energy.gcode.analyze.GcodeResult` it
    came from, adds the file's own figures (planner, lines, slicer's estimate, warnings)."""
    ex = est.extra
    kwh = est.energy_kwh
    base = est.process in BASELINES
    by_phase_kwh = {} if base else _renamed(est.energy_by_phase_j, PHASES, 1 / J_PER_KWH)
    # casting melts with gas: only the electricity is priced and put on the grid
    electricity_kwh = kwh - sum(ex.get("fuels_kwh", {}).values())
    is_fdm = est.process == "fdm"
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "process": est.process,
        "machine": est.machine,
        "material": est.settings.get("material"),
        "case": ex.get("case") or est.settings.get("preset") or "",
        "source": source,
        "time_s": est.time_s,
        "print_time_s": ex.get("print_time_s", est.time_by_phase_s.get("build")),
        "energy_kwh": kwh,
        "by_phase_s": {} if base else _renamed(est.time_by_phase_s, PHASES),
        "by_phase_kwh": by_phase_kwh,
        "by_component_kwh": _renamed(est.energy_by_component_j, COMPONENTS, 1 / J_PER_KWH),
        "material_g": est.material_g,
        "waste_g": ex.get("powder_waste_g", est.waste_g),
        "filament_mm": ex.get("filament_mm") if is_fdm else None,
        "kwh_per_kg": ex.get("kwh_per_kg")
        or (kwh / (est.material_g / 1000.0) if est.material_g else None),
        **cost_fields(electricity_kwh, est.material_g if is_fdm else None, costs),
        "warnings": list(getattr(gcode, "warnings", [])) + list(ex.get("warnings", [])),
        "settings": est.settings,
        "provenance": est.provenance,
        "fdm": _fdm(est, gcode) if is_fdm else None,
        "sintering": _sintering(est) if est.process in ("sls", "mls") else None,
        "baseline": _baseline(est) if base else None,
    }
    return rec


def _fdm(est: Estimate, gcode: Any) -> dict[str, Any]:
    """FDM's own figures; ``gcode`` (file, planner, counts) is null for a part's prediction
    and ``model`` (the geometry model's internals) is null for a G-code file's; ``plate``
    (the whole plate of ``--copies``; the record's top level is one copy's share) is null
    for a single part."""
    ex = est.extra
    rest = {k: v for k, v in ex.items() if k not in _LIFTED | _FDM_LIFTED}
    return {
        "by_feature_s": dict(est.time_by_feature_s),
        "filament_by_feature_mm": dict(
            gcode.filament_by_feature_mm if gcode else ex.get("filament_by_feature_mm", {})
        ),
        "layers": ex.get("layers"),
        "plate": ex.get("plate"),
        "gcode": None
        if gcode is None
        else {
            "file": gcode.path,
            "planner": gcode.mode,
            "slicer_estimate_s": gcode.slicer_estimate_s,
            "lines": gcode.n_lines,
            "moves": gcode.n_moves,
            "unknown_commands": dict(gcode.unknown_commands),
        },
        "model": rest if gcode is None else None,
    }


def _sintering(est: Estimate) -> dict[str, Any]:
    ex = est.extra
    return {
        "job_energy_kwh": ex.get("job_energy_kwh", est.energy_kwh),
        "copies": ex.get("copies", 1),
        "utilisation": ex.get("utilisation"),
        "packing_density": ex.get("packing_density"),
        **{k: v for k, v in ex.items() if k not in _LIFTED},
    }


def _baseline(est: Estimate) -> dict[str, Any]:
    steps = {k: v / J_PER_KWH for k, v in est.energy_by_phase_j.items()}
    return {"by_step_kwh": steps, **{k: v for k, v in est.extra.items() if k not in _LIFTED}}
