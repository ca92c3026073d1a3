"""Processing energy of a scenario step: from this project's process models, or pinned.

The LCA never holds its own energy figures for processing. :func:`processing_estimate`
asks the process model named by the step (FDM, SLS, MLS, injection moulding, casting) for
an :class:`~slicer_energy.estimate.Estimate` of the step's part on the step's machine. The
models are imported lazily, so the LCA layer works (with pinned figures) on an install
that lacks one of them, and fails with a clear message when asked for a model it lacks.

A *pinned* figure is a published or assumed kWh per part (or per kg of part) stored with
its source in the scenario file; :func:`pinned_estimate` turns it into an Estimate whose
provenance says so, so reports can show model and literature side by side. Energy that
is not electricity (the gas that melts cast aluminium) is named in ``extra["fuels_kwh"]``
by both, so it is booked as that fuel's combustion.

:func:`part_material` reads, from a model's Estimate, the part that the energy was computed
for: its mass, the process waste the model computes (FDM support and skirt, SLS/MLS powder
not recycled, MLS supports, casting returns and chips) and the argon MLS uses, so material,
end of life and energy describe one part.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import MissingEnergy, ProcessModelUnavailable, SlicerEnergyError
from ..estimate import J_PER_KWH, Estimate
from .scenarios import ProcessingStep

ENERGY_MODES = ("auto", "model", "pinned")


# process name -> (module, function). Each function takes (step, utilisation, part mass) and returns
# an Estimate for ONE part (per-part share of a job for batch processes).
_MODELS: dict[str, tuple[str, str]] = {
    "fdm": ("slicer_energy.lca.energy", "_fdm_model"),
    "sls": ("slicer_energy.lca.energy", "_batch_model"),
    "mls": ("slicer_energy.lca.energy", "_batch_model"),
    "injection-moulding": ("slicer_energy.lca.energy", "_baseline_model"),
    "casting": ("slicer_energy.lca.energy", "_baseline_model"),
}


def _import(module: str, process: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ProcessModelUnavailable(
            f"process model for {process!r} is not available: cannot import {module} ({exc}). "
            "Pin a published figure in the scenario (pinned_kwh or pinned_kwh_per_kg) and run "
            "with --energy pinned."
        ) from None


def _entry(module: str, names: tuple[str, ...], process: str) -> Callable[..., Any]:
    mod = _import(module, process)
    for n in names:
        fn = getattr(mod, n, None)
        if callable(fn):
            return fn
    raise ProcessModelUnavailable(
        f"process model for {process!r}: {module} has none of {', '.join(names)}; "
        "pin a published figure and run with --energy pinned"
    )


def _sample_part(name: str) -> Any:
    samples = _import("slicer_energy.samples", "sample parts")
    return samples.resolve_part(name)


def _predict(step: ProcessingStep, **kwargs: Any) -> Estimate:
    """The CLI's one dispatch (``predict --process ...``), so LCA and predict agree."""
    predict_part = _entry("slicer_energy.predict", ("predict_part",), step.process)
    return predict_part(_sample_part(step.part_sample), step.process, **kwargs)


def _batch_model(step: ProcessingStep, utilisation: float | None, part_mass_kg: float) -> Estimate:
    """SLS/MLS: energy per part at the step's build utilisation (1 = a full build)."""
    kwargs: dict[str, Any] = {"machine": step.machine}
    if "variant" in step.settings:
        kwargs["variant"] = step.settings["variant"]
    if "material" in step.settings:
        kwargs["material"] = step.settings["material"]
    full = _predict(step, fill_build=True, **kwargs)
    if utilisation is None or utilisation >= 1.0:
        return full
    capacity = int(full.extra.get("copies", 1))
    copies = max(1, round(utilisation * capacity))
    return _predict(step, copies=copies, **kwargs)


def _fdm_model(step: ProcessingStep, utilisation: float | None, part_mass_kg: float) -> Estimate:
    _import("slicer_energy.fdm.predict", "fdm")  # ProcessModelUnavailable until it exists
    return _predict(step, machine=step.machine, **step.settings)


def _baseline_model(
    step: ProcessingStep, utilisation: float | None, part_mass_kg: float
) -> Estimate:
    """Moulding or casting of the step's sample part: its volume in the twin's material (the
    same twin ``compare`` shows), not the scenario's fixed mass."""
    baselines = _import("slicer_energy.baselines", step.process)
    part = _sample_part(step.part_sample)
    if step.process == "injection-moulding":
        return baselines.baseline_part(part, step.process, machine_type=step.machine)
    return baselines.baseline_part(part, step.process)


def processing_estimate(
    step: ProcessingStep, utilisation: float | None = None, part_mass_kg: float | None = None
) -> Estimate:
    """Estimate of one part for ``step`` from this project's process model.

    Raises :class:`ProcessModelUnavailable` naming the module when the model is absent.
    """
    if step.process not in _MODELS:
        raise ProcessModelUnavailable(
            f"no process model for {step.process!r} (known: {', '.join(sorted(_MODELS))}); "
            "pin a figure in the scenario"
        )
    module, fn_name = _MODELS[step.process]
    fn = getattr(importlib.import_module(module), fn_name)
    util = (
        utilisation
        if utilisation is not None
        else (step.utilisation.value if step.utilisation else None)
    )
    est = fn(step, util, part_mass_kg)
    if not isinstance(est, Estimate) or not math.isfinite(est.energy_j) or est.energy_j < 0:
        raise ProcessModelUnavailable(
            f"process model for {step.process!r} returned {type(est).__name__} "
            "without a finite, non-negative energy"
        )
    est.provenance.setdefault("basis", "model")
    return est


def pinned_estimate(
    step: ProcessingStep,
    part_mass_kg: float,
    overrides: Mapping[str, float] | None = None,
    utilisation: float | None = None,
) -> Estimate:
    """Estimate from the step's pinned figure (per part or per kg of part).

    With ``utilisation`` given and the step carrying a reference utilisation, energy per
    part scales as u_ref / u: time-dependent consumption dominates laser sintering
    (Baumers et al. 2011, Proc IMechE B 225), so a job's energy is roughly fixed and is
    shared among the parts in it. This is an assumption, stated in the report.
    """
    ov = overrides or {}
    if (
        step.missing_reason is not None
        and step.pinned_kwh is None
        and step.pinned_kwh_per_kg is None
    ):
        raise MissingEnergy(f"{step.path} ({step.step}): energy missing: {step.missing_reason}")
    if step.pinned_kwh is not None:
        kwh = ov.get(f"{step.path}.pinned_kwh", step.pinned_kwh.value)
        source = step.pinned_kwh.source
    elif step.pinned_kwh_per_kg is not None:
        kwh = ov.get(f"{step.path}.pinned_kwh_per_kg", step.pinned_kwh_per_kg.value) * part_mass_kg
        source = step.pinned_kwh_per_kg.source
    else:
        raise ProcessModelUnavailable(
            f"{step.path} ({step.step}): no pinned_kwh or pinned_kwh_per_kg in the scenario"
        )
    u_ref = step.utilisation.value if step.utilisation else None
    scale = 1.0
    if utilisation is not None and u_ref is not None:
        if not 0.0 < utilisation <= 1.0:
            raise SlicerEnergyError(f"utilisation = {utilisation} must lie in (0, 1]")
        scale = u_ref / utilisation
    fuels = {
        fuel: ov.get(f"{step.path}.pinned_fuel_kwh_per_kg.{fuel}", n.value) * part_mass_kg * scale
        for fuel, n in step.pinned_fuel_kwh_per_kg.items()
    }
    return Estimate(
        process=step.process,
        machine=step.machine,
        time_s=float("nan"),
        energy_j=(kwh * scale + sum(fuels.values())) * J_PER_KWH,
        material_g=part_mass_kg * 1000.0,
        settings=dict(step.settings),
        provenance={"basis": "pinned", "source": source},
        extra={
            "utilisation": utilisation if utilisation is not None else u_ref,
            "fuels_kwh": fuels,
        },
    )


def step_energy(
    step: ProcessingStep,
    part_mass_kg: float,
    mode: str = "auto",
    overrides: Mapping[str, float] | None = None,
    utilisation: float | None = None,
) -> Estimate | None:
    """Energy of one part for ``step`` under ``mode``; None when the scenario marks it missing.

    ``model`` uses the process model (error if absent), ``pinned`` the scenario's figure,
    ``auto`` the model where importable and the pinned figure otherwise.
    """
    if mode not in ENERGY_MODES:
        raise SlicerEnergyError(f"energy mode {mode!r}; choose one of {', '.join(ENERGY_MODES)}")
    if step.missing_reason is not None and mode != "model":
        if step.pinned_kwh is None and step.pinned_kwh_per_kg is None:
            return None
    if mode == "model":
        return processing_estimate(step, utilisation, part_mass_kg)
    if mode == "auto":
        try:
            return processing_estimate(step, utilisation, part_mass_kg)
        except ProcessModelUnavailable:
            if (
                step.missing_reason is not None
                and step.pinned_kwh is None
                and step.pinned_kwh_per_kg is None
            ):
                return None
    return pinned_estimate(step, part_mass_kg, overrides, utilisation)


@dataclass(frozen=True)
class PartMaterial:
    """The part a model's energy was computed for: its mass, the process waste the model
    computes (None where it computes none: the scenario's waste share then applies), the
    argon it uses, and where these came from (for the report)."""

    part_kg: float
    waste_kg: float | None
    argon_m3: float
    source: str


# FDM features that do not end in the part (PrusaSlicer's names, fdm/features.py).
_FDM_WASTE_FEATURES = ("support_material", "support_material_interface", "skirt_brim")


def part_material(est: Estimate) -> PartMaterial | None:
    """The part behind a model's Estimate; None for a pinned one (the scenario's mass holds).

    Argon is a job's (purge and flow over the build), shared like the job's energy.
    """
    if est.provenance.get("basis") != "model" or not est.material_g > 0:
        return None
    where = f"{est.process} model ({est.machine})"
    grams = est.material_g
    if est.process == "fdm":
        fil = est.extra.get("filament_by_feature_mm", {})
        total = sum(fil.values())
        waste_share = sum(fil.get(k, 0.0) for k in _FDM_WASTE_FEATURES) / total if total else 0.0
        waste_g: float | None = grams * waste_share
        grams -= waste_g
        what = "filament less support and skirt; waste: support and skirt"
    elif est.process in ("sls", "mls", "casting"):
        waste_g = est.waste_g
        what = {
            "sls": "part; waste: powder not recycled",
            "mls": "part; waste: supports and powder lost; argon: the job's, by energy share",
            "casting": "part; waste: casting returns and machining chips",
        }[est.process]
    else:
        waste_g = None
        what = "part; waste: the scenario's process_waste_share"
    argon = float(est.extra.get("argon_m3", 0.0)) * float(est.extra.get("share_of_job", 1.0))
    return PartMaterial(
        part_kg=grams / 1000.0,
        waste_kg=None if waste_g is None else waste_g / 1000.0,
        argon_m3=argon,
        source=f"{where}: {what}",
    )
