"""One entry point from a part to an :class:`Estimate`, whatever the process.

``predict_part`` is what the ``predict`` and ``compare`` commands, the LCA layer and batch
runs all call, so that a number means the same everywhere; ``record`` / ``fdm_record``
flatten an Estimate into the JSON record documented in the README.
"""

from __future__ import annotations

from typing import Any

from .errors import SlicerEnergyError
from .estimate import J_PER_KWH, Estimate

PROCESSES = ("fdm", "sls", "mls")
DEFAULT_MACHINE = {"sls": "eosint-p390", "mls": "eos-m290"}
DEFAULT_MATERIAL = {"sls": "PA12", "mls": "AlSi10Mg"}


def record(est: Estimate) -> dict[str, Any]:
    """Flat JSON record of an estimate (the keys documented in the README)."""
    ex = est.extra
    if est.process == "fdm":
        return fdm_record(est)
    return {
        "process": est.process,
        "machine": est.machine,
        "material": est.settings.get("material"),
        "case": ex.get("case", ""),
        "time_s": est.time_s,
        "energy_kwh": est.energy_kwh,
        "job_energy_kwh": ex.get("job_energy_kwh", est.energy_kwh),
        "copies": ex.get("copies", 1),
        "utilisation": ex.get("utilisation"),
        "material_g": est.material_g,
        "powder_waste_g": ex.get("powder_waste_g", est.waste_g),
        "kwh_per_kg": ex.get("kwh_per_kg"),
        "by_phase": {k: v / J_PER_KWH for k, v in est.energy_by_phase_j.items()},
        "by_component": {k: v / J_PER_KWH for k, v in est.energy_by_component_j.items()},
        "settings": est.settings,
        "extra": ex,
        "provenance": est.provenance,
    }


def fdm_record(
    est: Estimate, price_per_kwh: float | None = None, gco2_per_kwh: float | None = None
) -> dict[str, Any]:
    """JSON record of an FDM estimate: time, filament, energy by phase/feature/component."""
    ex = est.extra
    kwh = est.energy_kwh
    s = est.settings
    return {
        "process": "fdm",
        "machine": est.machine,
        "material": s.get("material"),
        "case": s.get("preset", ""),
        "time_s": est.time_s,
        "print_time_s": ex.get("print_time_s"),
        "energy_kwh": kwh,
        "job_energy_kwh": kwh,
        "copies": 1,
        "utilisation": None,
        "material_g": est.material_g,
        "filament_m": ex.get("filament_mm", 0.0) / 1000.0,
        "powder_waste_g": None,
        "kwh_per_kg": kwh / (est.material_g / 1000.0) if est.material_g else None,
        "by_phase": {k: v / J_PER_KWH for k, v in est.energy_by_phase_j.items()},
        "by_phase_s": dict(est.time_by_phase_s),
        "by_feature": dict(est.time_by_feature_s),
        "by_feature_filament_mm": ex.get("filament_by_feature_mm", {}),
        "by_component": {k: v / J_PER_KWH for k, v in est.energy_by_component_j.items()},
        "cost": None if price_per_kwh is None else kwh * price_per_kwh,
        "co2_g": None if gco2_per_kwh is None else kwh * gco2_per_kwh,
        "profile": {
            "machine": est.machine,
            "preset": s.get("preset"),
            **est.provenance,
        },
        "settings": s,
        "extra": ex,
        "provenance": est.provenance,
    }


def predict_part(
    loaded: Any,
    process: str,
    machine: str | None = None,
    material: str | None = None,
    copies: int = 1,
    fill_build: bool = False,
    variant: str = "nominal",
    layers: Any = None,
    max_memory_gb: float | None = None,
    **fdm_options: Any,
) -> Estimate:
    """Estimate of one part (per-part share of a job for SLS/MLS) by process name.

    ``max_memory_gb``: the voxel grid's budget (default: half the available memory).

    ``layers``: sls/mls only, the part's precomputed
    :class:`~slicer_energy.sintering.powderbed.PartLayers` for that process's layer grid (see
    :func:`slicer_energy.batch.sweep.layer_grid`); a batch passes it to skip re-voxelising.
    """
    if process in ("sls", "mls"):
        if process == "sls":
            from .sintering.sls import predict_sls as predict_sintering

            options: dict[str, Any] = {}
        else:
            from .sintering.mls import predict_mls as predict_sintering

            options = {"variant": variant}
        return predict_sintering(
            loaded,
            machine or DEFAULT_MACHINE[process],
            material or DEFAULT_MATERIAL[process],
            copies=copies,
            fill_build=fill_build,
            name=getattr(loaded, "name", "part"),
            layers=layers,
            max_memory_gb=max_memory_gb,
            **options,
        )[0]
    if process == "fdm":
        from .fdm.predict import predict_fdm

        kwargs = {k: v for k, v in (("machine", machine), ("material", material)) if v}
        kwargs.update({k: v for k, v in fdm_options.items() if v is not None})
        return predict_fdm(loaded, max_memory_gb=max_memory_gb, **kwargs)
    raise SlicerEnergyError(f"unknown process {process!r}; choose one of {', '.join(PROCESSES)}")
