"""``slicer-energy batch PARTS... | --manifest FILE.csv``: parts × settings on Dask."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from ..errors import SettingsError
from ..userconfig import load_user_config
from ._costs import add_cost_options, costs_from_args
from ._parser import add_command

HELP = "predict many parts × sweep settings on a Dask cluster, results to Parquet"
DESCRIPTION = (
    "Run predict's model for every part and every combination of the sweep's "
    "settings, in parallel on a Dask LocalCluster (default) or an existing Dask "
    "scheduler. Each part is loaded once and, for laser sintering, voxelised once "
    "per layer grid and reused by all its jobs. One row per job (the estimate "
    "flattened) in a directory of Parquet files."
)

EPILOG = """\
sweep file (TOML): top-level axes apply to every process that takes them; a [sls],
[mls] or [fdm] table sets axes for that process only. The jobs are the cross product.

  process = ["sls", "mls"]
  copies  = [1, 10, "fill"]          # sls/mls: copies in one build, or a full build
  grid    = ["DE", "FR"]             # electricity mix for CO2e (lca/background ids)
  [mls]
  variant = ["nominal", "low", "high"]
  [fdm]                              # when the FDM model is installed
  printer = ["prusa-mk3s"]
  layer_height = [0.15, 0.2, 0.3]
  infill = [10, 20, 40]

axes: process, machine (alias printer), material, copies, variant, preset, layer_height,
infill, supports, grid. Without a 'process' axis or a process table the process is FDM, as
in predict; an axis that applies to none of the sweep's processes is an error naming it.
Without --sweep: one FDM job per part (the config file's printer, else prusa-mk3s).
Cost and CO2e options (--price-per-kwh, --grid, ...) price every row; the sweep's 'grid'
axis, when it has one, replaces --grid.

examples:
  slicer-energy batch parts/*.stl --sweep sweep.toml --out results.parquet
  slicer-energy batch --manifest parts.csv --sweep sweep.toml --workers 8
  slicer-energy batch phone_case bracket --scheduler tcp://10.0.0.5:8786 --out r.parquet
  slicer-energy batch parts/*.stl --price-per-kwh 0.30 --grid FR --out results.parquet
  slicer-energy batch-report results.parquet --plots plots/

Each row holds the record 'predict --json' prints (record_json), its numbers as columns
(energy_kwh, time_s, by_phase_kwh.print, sintering.utilisation, cost.total, co2_kg, ...).
The manifest CSV has a 'path' column (relative to the CSV) and optional 'name', 'units'.
Results are a directory of Parquet files written as jobs finish; rerunning with the same
--out skips jobs already there (resume after a crash or Ctrl-C). A part that cannot be
read becomes a row with 'error' set; the batch goes on. Ctrl-C or SIGTERM cancels the
jobs not yet finished, keeps the rows written, closes the cluster and exits 130.
"""


def _sweep(path: str | None) -> Any:
    """The sweep file's axes (FDM alone without one), FDM on the config file's printer
    unless the sweep names machines, as ``predict`` does."""
    from ..batch.run import DEFAULT_SWEEP, load_sweep

    sweep = load_sweep(path) if path else DEFAULT_SWEEP
    printer = load_user_config().printer
    fdm_axes = sweep.by_process.get("fdm")
    if printer and fdm_axes is not None and "machine" not in fdm_axes:
        sweep = replace(
            sweep, by_process={**sweep.by_process, "fdm": {**fdm_axes, "machine": (printer,)}}
        )
    return sweep


def run(args: argparse.Namespace) -> int:
    from ..batch.run import SignalStop, make_client, part_spec, read_manifest, run_batch

    if bool(args.parts) == bool(args.manifest):
        raise SettingsError("give either PARTS or --manifest FILE.csv (exactly one of them)")
    if args.workers is not None and args.workers < 1:
        raise SettingsError(f"--workers must be >= 1, got {args.workers}")
    sweep = _sweep(args.sweep)
    costs = costs_from_args(args)
    if args.manifest:
        parts = read_manifest(args.manifest)
    else:
        parts = [
            part_spec(p, args.units, where=f"argument {i}") for i, p in enumerate(args.parts, 1)
        ]
    for p in parts:
        if p.error:
            print(f"slicer-energy: warning: {p.error} (its jobs: error rows)", file=sys.stderr)
    # From here SIGINT/SIGTERM only set a flag: the batch cancels what is left, writes
    # the rows it has, closes the cluster and exits 130 (a rerun resumes).
    with SignalStop() as stop:
        client, cluster = make_client(args.scheduler, args.workers, dashboard=args.dashboard)
        try:
            if args.dashboard:
                print(f"dashboard: {cluster.dashboard_link}", file=sys.stderr, flush=True)
            res = run_batch(
                parts,
                sweep,
                args.out,
                client,
                reuse_grids=not args.no_reuse,
                progress=None if args.quiet else sys.stderr,
                flush_rows=args.flush_every,
                stop=stop,
                costs=costs,
            )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    print(
        f"{res.total} jobs: {res.skipped} already done, {res.computed} run "
        f"({res.errors} with errors) in {res.seconds:.1f} s "
        f"({res.jobs_per_s:.2f} jobs/s); {res.loads} parts loaded, "
        f"{res.layer_grids} layer grids voxelised; results in {res.out}"
    )
    messages = sorted(set(res.messages))
    for msg in messages[:10]:
        print(f"  error: {msg}")
    if len(messages) > 10:
        print(f"  ... {len(messages) - 10} more: slicer-energy batch-report {res.out}")
    if res.interrupted:
        print(
            f"slicer-energy: interrupted ({stop.signal}): {res.skipped + res.computed} of "
            f"{res.total} jobs done, their rows kept in {res.out}; run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "batch", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("parts", nargs="*", metavar="PART", help="mesh files or sample names")
    p.add_argument("--manifest", metavar="FILE.csv", help="CSV of parts (column 'path')")
    p.add_argument("--sweep", metavar="FILE.toml", help="sweep axes (see below)")
    p.add_argument(
        "--out",
        default="results.parquet",
        metavar="DIR",
        help="results folder, made if missing (default: ./results.parquet); reruns resume it",
    )
    p.add_argument(
        "--scheduler",
        default="local",
        metavar="local|ADDRESS",
        help=(
            "'local' starts a LocalCluster listening on 127.0.0.1 only; or the address of "
            "a running scheduler, tcp://host:8786"
        ),
    )
    p.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the local cluster's Dask dashboard on 127.0.0.1 (a free port; URL printed)",
    )
    p.add_argument(
        "--workers", type=int, help="local worker processes (default: the number of CPUs)"
    )
    p.add_argument("--units", default="mm", help="length unit of PART files (default: mm)")
    p.add_argument(
        "--flush-every",
        type=int,
        default=200,
        metavar="N",
        help="write a Parquet file every N rows or 10 s, whichever first (default: 200)",
    )
    p.add_argument(
        "--no-reuse",
        action="store_true",
        help="voxelise inside every job instead of once per part and layer grid",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cost_options(p)
