"""``slicer-energy lca phone-case|aircraft-part``: the study's scenarios, CML-IA impacts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import SettingsError
from ..lca.data import CATEGORIES, GWP_SETS
from ..lca.energy import ENERGY_MODES
from ..lca.replay import DEFAULT_DRAWS
from ..lca.scenarios import STUDIES
from ._numbers import int_in
from ._output import print_json, print_table
from ._parser import add_command

if TYPE_CHECKING:
    from ..lca.study import StudyRun

MAX_DRAWS = 100_000  # about 10 minutes; quantiles are stable long before

GWP_NOTE = {
    "ar5": "IPCC AR5 (CH4 28, N2O 265), as in CML-IA v4.8 (2016)",
    "ar4": "IPCC AR4 (CH4 25, N2O 298), an older CML 2001 set",
    "tar": "IPCC TAR (CH4 23, N2O 296), an older CML 2001 set",
}

HELP = "life-cycle impacts of the study's scenarios, or of printing vs buying your part"
DESCRIPTION = (
    "Recompute the study's LCA (Petschow et al. 2014): impacts per functional unit "
    "in CML-IA categories (GWP100, ADP elements, HTP, AP) for each scenario and "
    "variant, split by life-cycle stage, with processing energy from the process "
    "models."
)

EPILOG = """\
examples:
  slicer-energy lca phone-case                 tables by scenario, category and stage
  slicer-energy lca phone-case --grid DE       every processing step on the German grid
  slicer-energy lca aircraft-part --json       machine-readable, per scenario id
  slicer-energy lca phone-case --plots out/    PNG bar charts stacked by stage
  slicer-energy lca phone-case --energy pinned --monte-carlo 500 --sensitivity
  slicer-energy lca my-scenarios.toml          your own scenario file (same format as
                                               lca/scenarios/phone-case.toml)
  slicer-energy lca --part my.stl --printer ender3-v2 --grid DE
                                               print it at home or buy it (moulded, SLS)

--part puts your part into the phone-case study's scenarios (home FDM = H5-A, mass
production = H1, SLS print shop = H3-30 shipped and H4-30 collected): energy, part mass
and the waste the models compute come from the process models on your part, everything
else from the study; --grid then sets the home printer's mix only.

Processing energy comes from this project's process models (FDM, SLS, MLS, baselines);
--energy pinned uses the figure stored with its source in lca/scenarios/*.toml instead,
and auto (default) uses a model where it is installed and the pinned figure otherwise.
Each scenario lists the basis it used. Categories whose data are missing for some
contribution are marked incomplete ("*"), never filled with zero.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "lca", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument(
        "study",
        metavar="STUDY",
        nargs="?",
        help=f"{' | '.join(sorted(STUDIES))}, or the path of your own scenario file (.toml); "
        "leave out with --part",
    )
    p.add_argument(
        "--part",
        metavar="PART",
        help="print it or buy it: your part (STL/3MF/OBJ or a sample name) printed at home vs "
        "bought mass-produced or from an SLS service, in the phone-case study's scenarios",
    )
    p.add_argument(
        "--printer",
        help="with --part: the home printer, a name or file as 'predict --printer' takes "
        "(default: the config file's printer, else prusa-mk3s)",
    )
    p.add_argument(
        "--grid",
        help="electricity mix for every processing step (e.g. DE, CN, FR); with --part, the "
        "home printer's mix only (default: the config file's grid if it names a mix, else DE)",
    )
    p.add_argument(
        "--energy",
        choices=ENERGY_MODES,
        default="auto",
        help="processing energy: process model, pinned figure, or auto (default)",
    )
    p.add_argument(
        "--gwp-set",
        choices=GWP_SETS,
        default="ar5",
        help="GWP100 factors: ar5 (CML-IA 4.8, default), ar4 or tar (older CML 2001)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plots", metavar="DIR", help="write PNG bar charts stacked by stage to DIR")
    p.add_argument(
        "--monte-carlo",
        type=int_in(0, MAX_DRAWS),
        default=0,
        metavar="N",
        help=f"N seeded Monte Carlo draws over every ranged input, at most {MAX_DRAWS:,} "
        "(about 6 ms each; default 0: off)",
    )
    p.add_argument("--seed", type=int, default=42, help="Monte Carlo seed (default 42)")
    p.add_argument(
        "--sensitivity",
        action="store_true",
        help="one-at-a-time GWP sensitivity: grid, utilisation, recycling, life",
    )
    p.add_argument(
        "--brightway-project",
        metavar="NAME",
        help="also write the systems and CFs into Brightway 2.5 project NAME (optional extra "
        "'brightway'; the BRIGHTWAY2_DIR environment variable chooses the data directory)",
    )


def _part_run(args: argparse.Namespace) -> tuple[StudyRun, dict[str, Any]]:
    """``--part``: the phone-case study's scenarios around the user's part, every energy
    from the process models (a pinned figure belongs to the study's phone case)."""
    from ..lca.data import load_background
    from ..lca.part_study import inputs, part_study
    from ..lca.study import StudyRun
    from ..userconfig import load_user_config
    from ._costs import default_printer

    if args.study is not None:
        raise SettingsError(
            f"give a STUDY ({args.study!r}) or --part, not both: --part builds on phone-case"
        )
    if args.energy == "pinned":
        raise SettingsError(
            "--part needs the process models: --energy pinned holds the study's phone case's "
            "figures, not your part's"
        )
    db = load_background()
    printer = default_printer(args.printer, "prusa-mk3s")
    grid, grid_from = args.grid, "--grid"
    if grid is None:
        cfg = load_user_config()
        if cfg.grid is not None and f"electricity:{cfg.grid}" in db.processes:
            grid, grid_from = cfg.grid, f"{cfg.path}: key 'grid'"
        else:
            grid_from = "the study's: home printing in Berlin"
    study = part_study(args.part, printer, grid, db)
    run = StudyRun.from_study(study, db, energy_mode="model", gwp_set=args.gwp_set)
    return run, {"part": args.part, "inputs": inputs(study, printer, grid_from)}


def compute(args: argparse.Namespace) -> tuple[StudyRun, list, dict[str, Any]]:
    # The study engine pulls in scipy.sparse: imported here, not when the CLI starts.
    from ..lca.findings import FINDINGS, study_stats
    from ..lca.study import StudyRun, monte_carlo, sensitivity

    extra: dict[str, Any] = {}
    if args.part is not None:
        run, extra = _part_run(args)
    elif args.study is None:
        raise SettingsError("name a STUDY (phone-case, aircraft-part, a .toml) or give --part")
    elif args.printer is not None:
        raise SettingsError("--printer goes with --part; a study names its own machines")
    else:
        run = StudyRun.create(args.study, grid=args.grid, energy_mode=args.energy,
                              gwp_set=args.gwp_set)  # fmt: skip
    results = run.results()
    findings: list = []
    if run.study.name in FINDINGS and args.study in STUDIES:
        metrics, finder = FINDINGS[run.study.name]
        draws = args.monte_carlo or DEFAULT_DRAWS
        findings = finder(study_stats(run, metrics, draws, args.seed))
    doc: dict[str, Any] = {
        "study": run.study.name,
        "title": run.study.title,
        "functional_unit": run.study.functional_unit,
        "source": run.study.source,
        "method": "CML-IA v4.8 (2016) baseline",
        "gwp_set": args.gwp_set,
        "gwp_set_note": GWP_NOTE[args.gwp_set],
        "energy_mode": run.energy_mode,
        "grid_override": run.grid,
        **extra,
        "scenarios": {r.id: r.to_dict(run.method) for r in results},
        "findings": findings,
        "findings_draws": (args.monte_carlo or DEFAULT_DRAWS) if findings else 0,
    }
    if args.sensitivity:
        doc["sensitivity"] = sensitivity(run)
    if args.monte_carlo:
        doc["monte_carlo"] = monte_carlo(run, args.monte_carlo, args.seed)
    return run, results, doc


def _print_basis(results: list, cat: str) -> None:
    """Which data each total rests on (shares of the absolute contributions); for HTP the
    substances behind it."""
    bases = ("uslci", "sourced", "proxy", "uslci_linked")
    print_table([[r.id, *(_pct(r.shares[cat].get(f"{b}_share")) for b in bases)] for r in results],
                ["scenario", "USLCI", "sourced", "proxy", "USLCI linked"])  # fmt: skip
    if cat == "htp":
        for r in results:
            tot = sum(abs(v) for v in r.htp_substances.values()) or 1.0
            top = [f"{k} {abs(v) / tot:.0%}" for k, v in list(r.htp_substances.items())[:6]]
            print(f"  {r.id} HTP substances: {', '.join(top)}")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def run(args: argparse.Namespace) -> int:
    run_, results, doc = compute(args)
    if args.plots:
        from ..lca.plots import plot_study

        paths, skipped = plot_study(results, run_.method, args.plots, run_.study.name)
        doc["plots"] = [str(p) for p in paths]
        doc["plots_skipped"] = skipped
    if args.brightway_project:
        from ..lca.brightway import export_study

        exp = export_study(run_, args.brightway_project)
        doc["brightway"] = {k: v for k, v in exp.items() if k != "methods"} | {
            "methods": {c: list(m) for c, m in exp["methods"].items()}
        }
    if args.json:
        print_json(doc)
        return 0
    print(f"{run_.study.title}\nfunctional unit: {run_.study.functional_unit}")
    print(f"method: CML-IA v4.8; GWP set: {GWP_NOTE[args.gwp_set]}; energy: {doc['energy_mode']}"
          + (f"; grid override: {args.grid}" if run_.grid else ""))  # fmt: skip
    for label, lines in doc.get("inputs", {}).items():
        print(f"{label.replace('_', ' ')}: " + "; ".join(lines))
    _print_impacts(run_, results)
    _print_uncertainty(doc)
    if "plots" in doc:
        print("\nplots: " + ", ".join(doc["plots"]))
        for note in doc["plots_skipped"]:
            print(f"  not drawn: {note}")
    if "brightway" in doc:
        b = doc["brightway"]
        print(f"\nBrightway project {args.brightway_project}: {b['foreground']}, {b['biosphere']}")
    return 0


def _print_impacts(run_: StudyRun, results: list) -> None:
    """Per category: scenario by stage and the data behind it; then processing energy."""
    from ..lca.system import STAGES

    for cat in CATEGORIES:
        meta = run_.method.categories[cat]
        print(f"\n{meta['label']} [{meta['unit']}] per functional unit (* = incomplete)")
        rows = []
        for r in results:
            total = _fmt(r.totals[cat]) + ("*" if r.missing[cat] else "")
            if r.missing[cat] and r.totals[cat] == 0.0:
                total = "missing"
            rows.append([r.id, *(_fmt(r.by_stage[cat][s]) for s in STAGES), total])
        print_table(rows, ["scenario", *STAGES, "total"])
        _print_basis(results, cat)
    print("\nprocessing energy and part mass per part")
    print_table(
        [[r.id, st["step"], "missing" if st["energy_kwh"] is None else f"{st['energy_kwh']:.3g}",
          f"{r.part['part_kg'] * 1000:.1f}", st["grid"], st["basis"],
          (st["source"] or "")[:60]]
         for r in results for st in r.steps],
        ["scenario", "step", "kWh", "part g", "grid", "basis", "source"],
    )  # fmt: skip


def _print_uncertainty(doc: dict[str, Any]) -> None:
    """Findings, Monte Carlo and sensitivity, where they were computed."""
    if doc["findings"]:
        print(f"\nthe study's results, recomputed (median and 5-95 % of "
              f"{doc['findings_draws']} draws)")  # fmt: skip
    for f in doc["findings"]:
        print(f"- {f['statement']}: {f['verdict']} ({f['why']}; test: {f['criterion']})")
    if "monte_carlo" in doc:
        mc = doc["monte_carlo"]
        print(
            f"\nMonte Carlo: {mc['iterations']} draws, seed {mc['seed']}; "
            f"P(GWP order {' < '.join(mc['gwp_nominal_order'])}) = {mc['p_gwp_order_holds']:.2f}"
        )
        print_table(
            [
                [s, *(_fmt(v["gwp100_kg_co2eq"][q]) for q in ("p5", "p50", "p95"))]
                for s, v in mc["scenarios"].items()
            ],
            ["scenario", "GWP p5", "p50", "p95"],
        )
    if "sensitivity" in doc:
        print("\nGWP sensitivity to the electricity mix of processing")
        sens = doc["sensitivity"]["grid"]
        grids = sorted(next(iter(sens.values())))
        print_table(
            [[s, *(_fmt(v[g]) for g in grids)] for s, v in sens.items()], ["scenario", *grids]
        )
