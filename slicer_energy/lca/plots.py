"""Bar charts stacked by life-cycle stage, one PNG per impact category (as the study's figures)."""

from __future__ import annotations

from pathlib import Path

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


def plot_study(
    results: list[ScenarioResult], method: Method, out_dir: str | Path, study: str
) -> list[Path]:
    """Write ``<study>_<category key>.png`` into ``out_dir``; return the paths."""
    safe_name(study, "study name")  # it becomes part of each file name
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SlicerEnergyError(
            "--plots needs matplotlib: pip install 'slicer-energy[plots]'"
        ) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    ids = [r.id for r in results]
    for cat in CATEGORIES:
        meta = method.categories[cat]
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(ids) + 2), 4.5))
        pos = [0.0] * len(ids)
        neg = [0.0] * len(ids)
        for stage in STAGES:
            vals = [r.by_stage[cat][stage] for r in results]
            if not any(vals):
                continue
            bottoms = [p if v >= 0 else n for v, p, n in zip(vals, pos, neg, strict=True)]
            ax.bar(ids, vals, bottom=bottoms, label=stage.replace("_", " "),
                   color=STAGE_COLOURS[stage])  # fmt: skip
            pos = [p + max(v, 0) for p, v in zip(pos, vals, strict=True)]
            neg = [n + min(v, 0) for n, v in zip(neg, vals, strict=True)]
        for i, r in enumerate(results):
            if r.missing[cat]:
                ax.annotate("incomplete", (i, pos[i]), ha="center", va="bottom", fontsize=7,
                            rotation=90, color="#666")  # fmt: skip
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(f"{meta['label']} [{meta['unit']}]")
        gwp_note = f", GWP set {method.gwp_set}" if cat == "gwp100" else ""
        ax.set_title(f"{study}: {meta['label']} per functional unit (CML-IA 4.8{gwp_note})")
        ax.tick_params(axis="x", rotation=45)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        p = out / f"{study}_{meta['key']}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths
