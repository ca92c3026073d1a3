"""``slicer-energy batch-report RESULTS``: summary tables and plots of a batch's results."""

from __future__ import annotations

import argparse
from typing import Any

from ._output import hms, print_json, print_table
from ._parser import add_command

HELP = "summary tables and plots of 'batch' results"
DESCRIPTION = (
    "Summarise a results directory written by 'slicer-energy batch': kWh per part "
    "by process, errors, the sensitivity of kWh to each swept axis; with --plots, "
    "PNG plots of energy vs part volume, SLS energy vs build utilisation and the "
    "sensitivity."
)

EPILOG = """\
examples:
  slicer-energy batch-report results.parquet
  slicer-energy batch-report results.parquet --plots plots/    three PNG plots
  slicer-energy batch-report results.parquet --json

Sensitivity: for each swept axis, rows are grouped by part and all other settings, so
only that axis changes within a group; 'median x' is the median over groups of
max/min kWh per part. Mean kWh per value averages over everything else.
"""


def _f(v: Any, fmt: str = ".3g") -> str:
    return "" if v is None else format(v, fmt)


def run(args: argparse.Namespace) -> int:
    from ..batch.report import sensitivity, summary_by_process, write_plots
    from ..batch.results import read_results

    df = read_results(args.results)
    summ = summary_by_process(df)
    sens = sensitivity(df)
    errors = df[df["error"].notna()] if "error" in df else df.iloc[:0]
    paths, skipped = write_plots(df, args.plots) if args.plots else ([], [])
    plots = [str(p) for p in paths]
    if args.json:
        print_json(
            {
                "rows": int(len(df)),
                "by_process": summ,
                "sensitivity": sens,
                "errors": errors[["part", "part_where", "process", "error"]].to_dict("records"),
                "plots": plots,
                "plots_skipped": skipped,
            }
        )
        return 0
    print(f"{args.results}: {len(df)} rows, {len(errors)} with errors\n")
    print_table(
        [
            [
                s["process"],
                s["rows"],
                s["errors"],
                s["parts"],
                _f(s["kwh_min"]),
                _f(s["kwh_median"]),
                _f(s["kwh_max"]),
                "" if s["time_s_median"] is None else hms(s["time_s_median"]),
            ]
            for s in summ
        ],
        header=[
            "process",
            "rows",
            "errors",
            "parts",
            "kWh min",
            "kWh median",
            "kWh max",
            "time median",
        ],
    )
    if sens:
        print("\nsensitivity of kWh per part to each swept axis")
        print_table(
            [
                [
                    s["axis"],
                    s["groups"],
                    _f(s["median_ratio"], ".2f"),
                    _f(s["max_ratio"], ".2f"),
                    ", ".join(f"{k}: {v:.3g}" for k, v in s["mean_kwh_by_value"].items()),
                ]
                for s in sens
            ],
            header=["axis", "groups", "median x", "max x", "mean kWh by value"],
        )
    if len(errors):
        print(f"\nerrors (first 10 of {len(errors)})")
        for _, r in errors.head(10).iterrows():
            print(f"  {r['part']} [{r['process']}]: {r['error']}")
    for p in plots:
        print(f"wrote {p}")
    for note in skipped:
        print(f"not drawn: {note}")
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "batch-report", HELP, DESCRIPTION, EPILOG, run)
    p.add_argument("results", metavar="RESULTS", help="results directory (batch --out)")
    p.add_argument(
        "--plots", metavar="DIR", help="write the PNG plots into folder DIR (made if missing)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
