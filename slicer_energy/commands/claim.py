"""``slicer-energy claim``: the study's headline claims answered with this project's numbers."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ..lca.energy import ENERGY_MODES
from ..lca.replay import DEFAULT_DRAWS
from ..lca.scenarios import ProcessingStep, Scenario
from ._numbers import int_in
from ._output import print_json, print_table
from ._parser import add_command

HELP = "is laser sintering worse than home FDM? does the bionic bracket pay back?"
DESCRIPTION = (
    "Answer the study's claims with numbers for the sample phone case (SLS energy "
    "per case vs home FDM, their factor, and the build utilisation at which the "
    "order would flip) and for the bionic bracket (the use-phase factor of FZ4): each "
    "as median and 90 % interval over seeded draws of every ranged input (machine "
    "numbers, build utilisation, grid mixes, inventories), with the study's statements "
    "judged reproduced, contradicted or undetermined over that interval."
)

EPILOG = """\
examples:
  slicer-energy claim                 short report
  slicer-energy claim --json          sls_kwh_per_case, fdm_kwh_per_case, sls_to_fdm_factor,
                                      flip_utilisation, fz4_use_phase_factor, ... as
                                      {median, p05, p95, nominal}; verdicts
  slicer-energy claim --draws 1000    more draws than the default, slower
  slicer-energy claim --energy pinned published/assumed figures from lca/scenarios/ only
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "claim", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("--energy", choices=ENERGY_MODES, default="auto",
                   help="processing energy: model, pinned or auto (default)")  # fmt: skip
    p.add_argument("--draws", type=int_in(10, 100_000), default=DEFAULT_DRAWS, metavar="N",
                   help=f"seeded draws of all ranged inputs (default {DEFAULT_DRAWS})")  # fmt: skip
    p.add_argument("--seed", type=int, default=42, help="Monte Carlo seed (default 42)")
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


def _flip(run: Any, step: ProcessingStep, ov: Mapping[str, float], sls_kwh: float,
          fdm_kwh: float, basis: str | None) -> float:  # fmt: skip
    """Build utilisation (1 = a full build) at which SLS per case equals FDM per case.

    Beyond a full build (the SLS case still dearer at u = 1) the crossing is given as the
    multiple of a full build it would need, under the law that the job's energy is shared
    by its parts (u x E(u) constant), stated in ``flip_note``."""
    from ..lca.replay import utilisation_path

    u_ref = step.utilisation.value if step.utilisation else 1.0
    if basis == "pinned":  # the pinned 1/u law: closed form
        return sls_kwh * float(ov.get(utilisation_path(step), u_ref)) / fdm_kwh
    machine = run.replay.drawn_machine(step, ov)
    full = run.replay.batch(step, machine, 1.0).energy_kwh
    if full >= fdm_kwh:
        return full / fdm_kwh
    lo = 1.0 / run.replay.capacity(step)
    u = flip_utilisation(lambda x: run.replay.batch(step, machine, x).energy_kwh, fdm_kwh, lo)
    return lo if u is None else u


def compute(energy: str = "auto", draws: int = DEFAULT_DRAWS, seed: int = 42) -> dict[str, Any]:
    """Every headline as median, 5 and 95 % over seeded draws (and nominal), and the verdicts."""
    # The study engine pulls in scipy.sparse: imported here, not when the CLI starts.
    from ..lca import findings as fd
    from ..lca.study import DISTRIBUTION, StudyRun

    phone = StudyRun.create("phone-case", energy_mode=energy)
    sls_sc, fdm_sc = phone.study.get("H4-30"), phone.study.get("H5-A")
    i_s, sls_step = _step(sls_sc, "sls")
    i_f, _ = _step(fdm_sc, "fdm")
    sls_est = phone.energies[sls_sc.id][i_s]
    fdm_est = phone.energies[fdm_sc.id][i_f]
    basis = sls_est.provenance.get("basis")

    def metrics(ov: Mapping[str, float], results: list) -> dict[str, float]:
        m = fd.phone_case_metrics(ov, results)
        m["flip_utilisation"] = _flip(phone, sls_step, ov, m["sls_kwh_per_case"],
                                      m["fdm_kwh_per_case"], basis)  # fmt: skip
        return m

    pst = fd.study_stats(phone, metrics, draws, seed)
    air = StudyRun.create("aircraft-part", energy_mode=energy)
    ast = fd.study_stats(air, fd.aircraft_metrics, draws, seed)
    flip = pst["flip_utilisation"]
    return {
        "draws": draws,
        "seed": seed,
        "distribution": DISTRIBUTION,
        "interval": "p05-p95: 5 and 95 % quantiles of the draws; nominal: every input at its value",
        **{k: pst[k] for k in ("sls_kwh_per_case", "fdm_kwh_per_case", "sls_to_fdm_factor")},
        "flip_utilisation": flip,
        "flip_note": (
            "SLS per case equals FDM below a full build over the whole interval"
            if flip["p95"] <= 1.0
            else "SLS stays above FDM at every utilisation up to a full build over the whole "
            "interval; values above 1 are the multiple of a full build the crossing would need "
            "(job energy shared by its parts)"
            if flip["p05"] > 1.0
            else "the crossing lies below a full build in some draws and beyond it in others"
        ),
        "sls_basis": {"scenario": sls_sc.id, "machine": sls_step.machine, **sls_est.provenance},
        "fdm_basis": {"scenario": fdm_sc.id, **fdm_est.provenance},
        "fz4_use_phase_factor": ast["fz4_use_phase_factor_min"],
        "fz4_use_phase_factor_max_energy": ast["fz4_use_phase_factor_max"],
        "fz4_study_factor": fd.STUDY_FZ4_FACTOR,
        "fz4_tolerance_factor": fd.FZ4_TOLERANCE,
        "headlines": {"phone-case": pst, "aircraft-part": ast},
        "verdicts": fd.phone_case_findings(pst) + fd.aircraft_findings(ast),
        "gwp_set": phone.method.gwp_set,
    }


def _iv(h: dict[str, float], fmt: str = ".3g") -> str:
    return f"{h['median']:{fmt}} ({h['p05']:{fmt}}-{h['p95']:{fmt}})"


def run(args: argparse.Namespace) -> int:
    doc = compute(args.energy, args.draws, args.seed)
    if args.json:
        print_json(doc)
        return 0
    print(f"median (5-95 %) of {doc['draws']} draws, seed {doc['seed']}")
    print("phone case: processing energy per case")
    print_table(
        [["SLS (H4, full build)", _iv(doc["sls_kwh_per_case"]), doc["sls_basis"].get("basis")],
         ["home FDM (H5)", _iv(doc["fdm_kwh_per_case"]), doc["fdm_basis"].get("basis")]],
        ["process", "kWh/case", "basis"],
    )  # fmt: skip
    print(f"SLS / FDM = {_iv(doc['sls_to_fdm_factor'])}; utilisation where they cross: "
          f"{_iv(doc['flip_utilisation'])} ({doc['flip_note']})")  # fmt: skip
    print(
        f"\nbionic bracket (FZ4): saved kerosene / production GWP = "
        f"{_iv(doc['fz4_use_phase_factor'], '.0f')} (MLS Min), "
        f"{_iv(doc['fz4_use_phase_factor_max_energy'], '.0f')} (Max); "
        f"study: about {doc['fz4_study_factor']:.0f}"
    )
    print("\nthe study's statements")
    for v in doc["verdicts"]:
        print(f"- {v['statement']}: {v['verdict']} ({v['why']})")
    return 0
