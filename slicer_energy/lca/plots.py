"""Bar charts stacked by life-cycle stage, one PNG per impact category (as the study's figures).

A use phase (the aircraft part's fuel saved over its life, thousands of kg CO2e against
production's tens) gets its own axis beside the production stages, so neither hides the
other. A category without a single non-zero number is not drawn: an empty chart reads as
"no impact"; it is skipped with a note instead.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from ..errors import SlicerEnergyError
from ..paths import safe_name
from .data import CATEGORIES, Method
from .study import ScenarioResult
from .system import STAGES

STAGE_COLOURS = {
    "material": "#4e79a7",
    "processing": "#f28e2b",
    "transport": "#59a14f",
    "end_of_life": "#9c755f",
    "use": "#e15759",
}
PRODUCTION = tuple(s for s in STAGES if s != "use")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SlicerEnergyError(
            "--plots needs matplotlib: pip install 'slicer-energy[plots]'"
        ) from None
    return plt


def _has_data(results: list[ScenarioResult], cat: str) -> bool:
    return any(v != 0.0 and math.isfinite(v) for r in results for v in r.by_stage[cat].values())


def plot_study(
    results: list[ScenarioResult], method: Method, out_dir: str | Path, study: str
) -> tuple[list[Path], list[str]]:
    """Write ``<study>_<category key>.png`` into ``out_dir``: (paths written, a note per
    category skipped for want of any number)."""
    safe_name(study, "study name")  # it becomes part of each file name
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    skipped: list[str] = []
    for cat in CATEGORIES:
        meta = method.categories[cat]
        if not _has_data(results, cat):
            skipped.append(f"{meta['key']}: no scenario has a number for {meta['label']}")
            continue
        fig = category_figure(plt, results, cat, meta, _title(study, meta, cat, method))
        p = out / f"{study}_{meta['key']}.png"
        try:
            fig.savefig(p, dpi=120)
        except OSError as exc:
            raise SlicerEnergyError(f"{p}: cannot write plot: {exc}") from None
        finally:
            plt.close(fig)
        paths.append(p)
    return paths, skipped


def _title(study: str, meta: dict, cat: str, method: Method) -> str:
    gwp_note = f", GWP set {method.gwp_set}" if cat == "gwp100" else ""
    return f"{study}: {meta['label']} per functional unit (CML-IA 4.8{gwp_note})"


def category_figure(
    plt: Any, results: list[ScenarioResult], cat: str, meta: dict, title: str
) -> Any:
    """One category's figure: production stages stacked per scenario, and the use phase on
    an axis of its own (right) where any scenario has one."""
    ids = [r.id for r in results]
    users = [r for r in results if r.by_stage[cat]["use"] != 0.0]
    width = max(6.0, 0.8 * len(ids) + 2.0) + (0.6 * len(users) + 1.5 if users else 0.0)
    if users:
        fig, (ax, ax_use) = plt.subplots(
            1, 2, figsize=(width, 5.0), width_ratios=[len(ids), max(2, len(users))]
        )
    else:
        fig, ax = plt.subplots(figsize=(width, 5.0))
    tops = _stacked(ax, results, cat, PRODUCTION)
    for i, r in enumerate(results):
        if r.missing[cat]:
            ax.annotate("incomplete", (i, tops[i]), ha="center", va="bottom", fontsize=7,
                        rotation=90, color="#666")  # fmt: skip
    ax.set_ylabel("\n".join(textwrap.wrap(f"{meta['label']} [{meta['unit']}]", 45)))
    if users:
        _stacked(ax_use, users, cat, ("use",))
        ax_use.margins(y=0.12)  # room above zero for the net labels
        ax_use.set_title("use phase (own scale)", fontsize=9)
        ax.set_title("production and end of life", fontsize=9)
        for i, r in enumerate(users):
            ax_use.annotate(f"net {r.totals[cat]:.4g}", (i, 0), ha="center", va="bottom",
                            fontsize=7, color="#333")  # fmt: skip
    handles: dict[str, Any] = {}
    for a in fig.axes:
        for h, label in zip(*a.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    ax.legend(handles.values(), handles.keys(), fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(title, int(width * 12))), fontsize=10)
    fig.tight_layout()
    return fig


def _stacked(
    ax: Any, results: list[ScenarioResult], cat: str, stages: tuple[str, ...]
) -> list[float]:
    """Bars of ``stages`` stacked per scenario, positive up and negative down from zero;
    returns the top of each stack."""
    ids = [r.id for r in results]
    pos = [0.0] * len(ids)
    neg = [0.0] * len(ids)
    for stage in stages:
        vals = [r.by_stage[cat][stage] for r in results]
        if not any(vals):
            continue
        bottoms = [p if v >= 0 else n for v, p, n in zip(vals, pos, neg, strict=True)]
        ax.bar(ids, vals, bottom=bottoms, label=stage.replace("_", " "),
               color=STAGE_COLOURS[stage])  # fmt: skip
        pos = [p + max(v, 0) for p, v in zip(pos, vals, strict=True)]
        neg = [n + min(v, 0) for n, v in zip(neg, vals, strict=True)]
    # A zero-height bar on top of a stack is "sticky" and would pin the axis to that top,
    # cutting the tallest bar at the frame; margins on both sides instead.
    ax.use_sticky_edges = False
    ax.margins(y=0.08)
    if not any(neg):
        ax.set_ylim(0.0, ax.get_ylim()[1])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.tick_params(axis="x", rotation=45)
    return pos
