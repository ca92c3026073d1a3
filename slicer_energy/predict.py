"""One entry point from a part to an :class:`Estimate`, whatever the process.

``predict_part`` is what the ``predict`` and ``compare`` commands, the LCA layer and batch
runs all call, so that a number means the same everywhere; :func:`slicer_energy.record.record`
turns the Estimate into the JSON record.
"""

from __future__ import annotations

from typing import Any

from .errors import SlicerEnergyError
from .estimate import Estimate

PROCESSES = ("fdm", "sls", "mls")
DEFAULT_MACHINE = {"sls": "eosint-p390", "mls": "eos-m290"}
DEFAULT_MATERIAL = {"sls": "PA12", "mls": "AlSi10Mg"}


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
        return predict_fdm(loaded, max_memory_gb=max_memory_gb, copies=copies, **kwargs)
    raise SlicerEnergyError(f"unknown process {process!r}; choose one of {', '.join(PROCESSES)}")
