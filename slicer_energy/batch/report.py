"""What a batch's results say: summaries, one-at-a-time sensitivity, plots.

Pure functions over the results DataFrame (:func:`slicer_energy.batch.results.read_results`).
Sensitivity of an axis is measured one at a time: rows are grouped by part and every
*other* setting, so within a group only that axis changes; the spread of kWh per part
in a group (max / min) is what changing the axis alone does. Its median over groups is
reported, with the mean kWh per value of the axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SlicerEnergyError


def ok_rows(df: Any) -> Any:
    """Rows with an estimate (no error)."""
    return df[df["error"].isna()] if "error" in df else df


def summary_by_process(df: Any) -> list[dict[str, Any]]:
    """Per process: jobs, errors, and kWh per part (min, median, max)."""
    out = []
    for proc, g in df.groupby("process", sort=True):
        ok = ok_rows(g)
        e = ok["energy_kwh"].astype(float) if len(ok) else np.array([])
        out.append(
            {
                "process": proc,
                "rows": int(len(g)),
                "errors": int(len(g) - len(ok)),
                "parts": int(g["part"].nunique()),
                "kwh_min": float(np.min(e)) if len(e) else None,
                "kwh_median": float(np.median(e)) if len(e) else None,
                "kwh_max": float(np.max(e)) if len(e) else None,
                "time_s_median": float(np.median(ok["time_s"])) if len(ok) else None,
            }
        )
    return out


def swept_axes(df: Any) -> list[str]:
    """Model setting columns (``set_<axis>``) that take more than one value.

    The electricity mix (``set_grid``) is left out: it changes CO2e, not kWh.
    """
    return [
        c
        for c in df.columns
        if c.startswith("set_") and c != "set_grid" and df[c].nunique(dropna=True) > 1
    ]


def sensitivity(df: Any) -> list[dict[str, Any]]:
    """For each swept axis: median max/min kWh ratio when only it changes, mean kWh per value."""
    ok = ok_rows(df).drop_duplicates("job_id")  # one row per job, not per electricity mix
    axes = swept_axes(ok)
    out = []
    for ax in axes:
        others = ["part_digest", "part", "process"] + [a for a in axes if a != ax]
        g = ok.assign(**{c: _label(ok[c]) for c in others}).groupby(others, sort=False)
        stats = g["energy_kwh"].agg(["min", "max", "count"])
        stats = stats[(stats["count"] > 1) & (stats["min"] > 0)]
        ratio = (stats["max"] / stats["min"]).to_numpy()
        has = ok[ok[ax].notna()]  # rows of processes that take this axis
        means = has.groupby(_label(has[ax]))["energy_kwh"].mean()
        out.append(
            {
                "axis": ax.removeprefix("set_"),
                "groups": int(len(ratio)),
                "median_ratio": float(np.median(ratio)) if len(ratio) else None,
                "max_ratio": float(np.max(ratio)) if len(ratio) else None,
                "mean_kwh_by_value": {str(k): float(v) for k, v in means.items()},
            }
        )
    out.sort(key=lambda r: -(r["median_ratio"] or 0))
    return out


def _label(col: Any) -> Any:
    """A setting column as group labels: missing (None or NaN, by file) is one label, '-'."""
    return col.astype(object).where(col.notna(), "-").astype(str)


def write_plots(df: Any, folder: str | Path) -> tuple[list[Path], list[str]]:
    """PNG plots: kWh vs volume by process, SLS kWh vs utilisation, axis sensitivity; a plot
    with nothing to draw is not written (an empty chart reads as a result): (paths written,
    a note per plot skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise SlicerEnergyError(
            "--plots needs matplotlib: pip install 'slicer-energy[plots]'"
        ) from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ok = ok_rows(df)
    paths: list[Path] = []
    skipped: list[str] = []
    for draw in (_volume_plot, _utilisation_plot, _sensitivity_plot):
        name, fig = draw(plt, ok, df)
        if isinstance(fig, str):
            skipped.append(f"{name}: {fig}")
        else:
            paths.append(_save(fig, folder / name, plt))
    return paths, skipped


def _volume_plot(plt: Any, ok: Any, df: Any) -> tuple[str, Any]:
    """(file name, figure, or why there is none): kWh per part vs volume, by process."""
    name = "energy_vs_volume.png"
    sized = ok[ok["volume_mm3"].notna() & (ok["energy_kwh"] > 0)] if len(ok) else ok
    if not len(sized):
        return name, "no row without error has a volume and energy"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for proc, g in sized.groupby("process"):
        ax.scatter(g["volume_mm3"] / 1000.0, g["energy_kwh"], s=10, alpha=0.6, label=proc)
    ax.set(xscale="log", yscale="log", xlabel="part volume (cm³)")
    ax.set(ylabel="energy per part (kWh)", title="Energy per part vs part volume")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return name, fig


def _utilisation_plot(plt: Any, ok: Any, df: Any) -> tuple[str, Any]:
    """(file name, figure, or why there is none): SLS kWh per part vs build utilisation."""
    name = "sls_energy_vs_utilisation.png"
    util = "sintering.utilisation"
    sls = ok[(ok["process"] == "sls") & ok[util].notna()] if util in ok else []
    if not len(sls):
        return name, "no SLS row with a build utilisation"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for part, g in sls.groupby("part"):
        g = g.sort_values(util)
        ax.plot(g[util] * 100, g["energy_kwh"], "o-", ms=3, label=str(part))
    ax.set(yscale="log", xlabel="build utilisation (% of chamber volume)")
    ax.set(ylabel="energy per part (kWh)", title="SLS: energy per part vs build utilisation")
    if sls["part"].nunique() <= 12:
        ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return name, fig


def _sensitivity_plot(plt: Any, ok: Any, df: Any) -> tuple[str, Any]:
    """(file name, figure, or why there is none): max/min kWh ratio per sweep axis."""
    name = "sensitivity.png"
    sens = [s for s in sensitivity(df) if s["median_ratio"]]
    if not sens:
        return name, "no sweep axis changes the energy"
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(sens) + 1.6))
    names = [s["axis"] for s in sens][::-1]
    ax.barh(names, [s["max_ratio"] for s in sens][::-1], color="0.8", label="largest")
    ax.barh(names, [s["median_ratio"] for s in sens][::-1], color="C0", label="median")
    ax.set(xscale="log", xlabel="kWh per part, max / min when only this axis changes")
    ax.set_title("Sensitivity of energy to each sweep axis")
    ax.legend()
    return name, fig


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
