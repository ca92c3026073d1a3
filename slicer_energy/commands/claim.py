"""``slicer-energy claim``: the study's headline claims answered with this project's numbers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..estimate import J_PER_KWH
from ..lca.energy import ENERGY_MODES, step_energy
from ..lca.scenarios import ProcessingStep, Scenario
from ._output import print_json, print_table
from ._parser import add_command

HELP = "is laser sintering worse than home FDM? does the bionic bracket pay back?"
DESCRIPTION = (
    "Answer the study's claims with numbers for the sample phone case (SLS energy "
    "per case vs home FDM, their factor, and the build utilisation at which the "
    "order would flip) and for the bionic bracket (the use-phase factor of FZ4)."
)

EPILOG = """\
examples:
  slicer-energy claim                 short report
  slicer-energy claim --json          sls_kwh_per_case, fdm_kwh_per_case, sls_to_fdm_factor,
                                      flip_utilisation, fz4_use_phase_factor, ...
  slicer-energy claim --energy pinned published/assumed figures from lca/scenarios/ only
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "claim", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("--energy", choices=ENERGY_MODES, default="auto",
                   help="processing energy: model, pinned or auto (default)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")


def _step(sc: Scenario, process: str) -> tuple[int, ProcessingStep]:
    for i, s in enumerate(sc.processing):
        if s.process == process:
            return i, s
    raise LookupError(f"scenario {sc.id} has no {process} step")  # pragma: no cover - data


def flip_utilisation(
    energy_at: Callable[[float], float], target_kwh: float, lo: float = 0.01, hi: float = 1.0
) -> float | None:
    """Utilisation u in [lo, hi] where energy_at(u) (falling with u) equals target; None if
    the curves do not cross there. Bisection: the SLS model is monotone in utilisation."""
    f_lo, f_hi = energy_at(lo) - target_kwh, energy_at(hi) - target_kwh
    if f_lo * f_hi > 0:
        return None
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if (energy_at(mid) - target_kwh) * f_lo > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def compute(energy: str = "auto") -> dict[str, Any]:
    # The study engine pulls in scipy.sparse: imported here, not when the CLI starts.
    from ..lca.findings import STUDY_FZ4_FACTOR, use_phase_factor
    from ..lca.study import StudyRun

    phone = StudyRun.create("phone-case", energy_mode=energy)
    sls_sc, fdm_sc = phone.study.get("H4-30"), phone.study.get("H5-A")
    i_s, sls_step = _step(sls_sc, "sls")
    i_f, _ = _step(fdm_sc, "fdm")
    sls_est = phone.energies[sls_sc.id][i_s]
    fdm_est = phone.energies[fdm_sc.id][i_f]
    sls_kwh = sls_est.energy_j / J_PER_KWH
    fdm_kwh = fdm_est.energy_j / J_PER_KWH
    u_ref = sls_step.utilisation.value if sls_step.utilisation else 1.0
    basis = sls_est.provenance.get("basis")

    def sls_at(u: float) -> float:
        mode = "pinned" if basis == "pinned" else "model"
        est = step_energy(sls_step, sls_sc.part_mass_kg.value, mode, None, u)
        return est.energy_j / J_PER_KWH

    flip = flip_utilisation(sls_at, fdm_kwh)
    # Under the pinned 1/u law the crossing has a closed form, also beyond a full build
    flip_equiv = sls_kwh * u_ref / fdm_kwh if basis == "pinned" else flip
    air = StudyRun.create("aircraft-part", energy_mode=energy)
    res = {r.id: r for r in air.results()}
    fz4 = {s: use_phase_factor(res[s]) for s in res if s.startswith("FZ4")}
    return {
        "sls_kwh_per_case": sls_kwh,
        "fdm_kwh_per_case": fdm_kwh,
        "sls_to_fdm_factor": sls_kwh / fdm_kwh,
        "sls_utilisation": u_ref,
        "flip_utilisation": flip_equiv,
        "flip_possible": flip is not None,
        "flip_note": (
            f"SLS per case equals FDM at utilisation {flip:.2f}"
            if flip is not None
            else f"SLS stays above FDM at every utilisation up to a full build; the crossing would "
            f"need {flip_equiv:.2f} x a full build"
            if flip_equiv
            else "no crossing found"
        ),
        "sls_basis": {"scenario": sls_sc.id, "machine": sls_step.machine, **sls_est.provenance},
        "fdm_basis": {"scenario": fdm_sc.id, **fdm_est.provenance},
        "fz4_use_phase_factor": fz4.get("FZ4-min"),
        "fz4_use_phase_factor_max_energy": fz4.get("FZ4-max"),
        "fz4_study_factor": STUDY_FZ4_FACTOR,
        "fz4_within_x1_5_of_study": all(
            v is not None and 1 / 1.5 <= v / STUDY_FZ4_FACTOR <= 1.5 for v in fz4.values()
        ),
        "gwp_set": phone.method.gwp_set,
    }


def run(args: argparse.Namespace) -> int:
    doc = compute(args.energy)
    if args.json:
        print_json(doc)
        return 0
    print("phone case: processing energy per case")
    print_table(
        [["SLS (H4, full build)", f"{doc['sls_kwh_per_case']:.3g}", doc["sls_basis"].get("basis"),
          str(doc["sls_basis"].get("source", ""))[:60]],
         ["home FDM (H5)", f"{doc['fdm_kwh_per_case']:.3g}", doc["fdm_basis"].get("basis"),
          str(doc["fdm_basis"].get("source", ""))[:60]]],
        ["process", "kWh/case", "basis", "source"],
    )  # fmt: skip
    print(f"SLS / FDM = {doc['sls_to_fdm_factor']:.2f}; {doc['flip_note']}")
    print(
        f"\nbionic bracket (FZ4): saved kerosene / production GWP = "
        f"{doc['fz4_use_phase_factor']:.0f} (MLS low energy), "
        f"{doc['fz4_use_phase_factor_max_energy']:.0f} (high); "
        f"study: ~{doc['fz4_study_factor']:.0f}"
        + ("" if doc["fz4_within_x1_5_of_study"] else " -> NOT within x1.5 of the study")
    )
    return 0
