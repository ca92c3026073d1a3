"""Plots draw what they claim (issue 18 item 10): every LCA category chart has bars whose
axis holds them, the use phase has an axis of its own, an empty category is skipped with a
note; the G-code timeline starts from the printer's state and its legend matches its lines.

Checked on matplotlib's objects and on the saved PNGs' pixels, not on file names alone.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from slicer_energy.cli import main
from slicer_energy.lca.data import CATEGORIES
from slicer_energy.lca.study import StudyRun

from conftest import need_shared

plt = pytest.importorskip("matplotlib.pyplot")
from matplotlib.colors import to_hex  # noqa: E402  (after the importorskip)

from slicer_energy.lca.plots import STAGE_COLOURS, category_figure, plot_study  # noqa: E402

KEEP = os.environ.get("SLICER_ENERGY_KEEP_PLOTS")  # a folder: the PNGs are copied there


@pytest.fixture(scope="module")
def aircraft():
    run = StudyRun.create("aircraft-part", energy_mode="pinned")
    return run, run.results()


def _bars(ax) -> list:
    return [p for p in ax.patches if p.get_height() != 0.0]


def _stage_pixels(png: Path) -> dict[str, int]:
    """How many pixels of each stage colour the saved image holds."""
    import numpy as np

    img = (plt.imread(png)[..., :3] * 255).round().astype(int)
    out = {}
    for stage, hex_ in STAGE_COLOURS.items():
        rgb = np.array([int(hex_[i : i + 2], 16) for i in (1, 3, 5)])
        out[stage] = int((np.abs(img - rgb).sum(axis=2) <= 6).sum())
    return out


def test_every_category_chart_has_bars_inside_its_axis(aircraft, tmp_path):
    run, results = aircraft
    paths, skipped = plot_study(results, run.method, tmp_path, "aircraft-part")
    assert skipped == [] and len(paths) == len(CATEGORIES)
    for cat in CATEGORIES:
        meta = run.method.categories[cat]
        fig = category_figure(plt, results, cat, meta, "t")
        ax = fig.axes[0]
        prod = [sum(v for s, v in r.by_stage[cat].items() if s != "use") for r in results]
        assert len(_bars(ax)) >= len(results)  # at least one non-empty bar per scenario
        lo, hi = ax.get_ylim()
        assert lo <= min(0.0, *prod) and hi >= max(prod) * 1.02  # the tallest is not cut
        plt.close(fig)
    for p in paths:  # the pixels: material (every scenario has some) is drawn, not empty axes
        assert _stage_pixels(p)["material"] > 2000, p.name
    if KEEP:
        for p in paths:
            (Path(KEEP) / p.name).write_bytes(p.read_bytes())


def test_use_phase_on_its_own_axis_keeps_production_visible(aircraft):
    """FZ4 saves about 4740 kg CO2e of fuel in use against tens of kg to make each part: on
    one axis the production bars were a few pixels high."""
    run, results = aircraft
    fig = category_figure(plt, results, "gwp100", run.method.categories["gwp100"], "t")
    ax, ax_use = fig.axes
    use = [r.by_stage["gwp100"]["use"] for r in results if r.by_stage["gwp100"]["use"]]
    assert use and min(use) < -4000
    prod_top = max(p.get_y() + p.get_height() for p in _bars(ax))
    assert ax.get_ylim()[1] < 2 * prod_top  # production fills its own axis
    assert ax.get_ylim()[0] > min(use) / 10  # ... which does not reach down to the use phase
    assert ax_use.get_ylim()[0] <= min(use)
    assert [t.get_text() for t in ax_use.get_xticklabels()] == ["FZ4-min", "FZ4-max"]
    use_colour = STAGE_COLOURS["use"]
    assert {to_hex(p.get_facecolor()) for p in _bars(ax_use)} == {use_colour}
    assert use_colour not in {to_hex(p.get_facecolor()) for p in _bars(ax)}
    fig.canvas.draw()
    title = fig.texts[0].get_window_extent()  # the suptitle lies inside the figure
    assert title.x0 >= 0 and title.x1 <= fig.bbox.width
    plt.close(fig)


def test_a_category_without_numbers_is_skipped_with_a_note(aircraft, tmp_path):
    run, results = aircraft
    empty = copy.deepcopy(results)
    for r in empty:
        r.by_stage["ap"] = dict.fromkeys(r.by_stage["ap"], 0.0)
    paths, skipped = plot_study(empty, run.method, tmp_path, "study")
    key = run.method.categories["ap"]["key"]
    assert len(paths) == len(CATEGORIES) - 1
    assert not (tmp_path / f"study_{key}.png").exists()
    assert len(skipped) == 1 and skipped[0].startswith(key)


def test_timeline_starts_from_the_printer_state_and_legend_matches(tmp_path):
    """The modelled temperatures start at the profile's ambient at t = 0 (was 108 C: the
    first interval's mean) and each legend entry has its line's colour."""
    from slicer_energy.commands.gcode import timeline_figure
    from slicer_energy.gcode.analyze import analyze_file
    from slicer_energy.machine import load_machine

    machine = load_machine("ender3-v2")
    gcode = need_shared("corpus", "gcode", "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    res = analyze_file(gcode, machine, keep_rows=False, timeline=True)
    fig = timeline_figure(plt, res)
    ax_temp = fig.axes[1]
    lines = {ln.get_label(): ln for ln in ax_temp.get_lines() if not ln.get_label().startswith("_")}
    hot, bed = lines["hotend (model)"], lines["bed (model)"]
    assert hot.get_xdata()[0] == 0.0 and bed.get_xdata()[0] == 0.0
    assert hot.get_ydata()[0] == pytest.approx(machine.hotend.t_amb_c)
    assert bed.get_ydata()[0] == pytest.approx(machine.bed.t_amb_c)
    # the end of the run: the last modelled point is the state at the file's last second
    assert hot.get_xdata()[-1] == pytest.approx(res.timeline[-1].t1_s / 60)
    legend = ax_temp.get_legend()
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        assert to_hex(handle.get_color()) == to_hex(lines[text.get_text()].get_color())
    # the set point is drawn in its heater's colour, dashed
    assert to_hex(lines["hotend set"].get_color()) == to_hex(hot.get_color())
    assert to_hex(lines["bed set"].get_color()) == to_hex(bed.get_color())
    assert to_hex(hot.get_color()) != to_hex(bed.get_color())
    plt.close(fig)
    assert main(["gcode", str(gcode), "--printer", "ender3-v2", "--plots", str(tmp_path)]) == 0
    png = tmp_path / "theshamot__cube_0.2mm_PLA_ENDER3_11m-timeline.png"
    if KEEP:
        (Path(KEEP) / png.name).write_bytes(png.read_bytes())


def _batch_frame(error: bool):
    """A small results table as batch writes it: two parts, FDM and SLS at two fills."""
    import pandas as pd

    rows = []
    for k, (part, vol) in enumerate((("cube", 8000.0), ("vase", 60000.0))):
        for j, (proc, util) in enumerate((("fdm", None), ("sls", 0.2), ("sls", 0.8))):
            rows.append({"job_id": f"{k}-{j}", "part": part, "part_digest": part,
                         "process": proc, "volume_mm3": vol, "set_copies": j,
                         "energy_kwh": vol / 1e5 * (1 + j), "sintering.utilisation": util,
                         "error": "failed" if error else None})  # fmt: skip
    return pd.DataFrame(rows)


def test_batch_plots_draw_their_points_and_skip_what_has_none(tmp_path):
    from slicer_energy.batch.report import write_plots

    paths, skipped = write_plots(_batch_frame(error=False), tmp_path / "ok")
    assert {p.name for p in paths} == {
        "energy_vs_volume.png", "sls_energy_vs_utilisation.png", "sensitivity.png"
    }  # fmt: skip
    assert skipped == []
    img = plt.imread(tmp_path / "ok" / "energy_vs_volume.png")[..., :3]
    assert (img.std(axis=2) > 0.05).sum() > 200  # coloured markers, not a blank frame
    paths, skipped = write_plots(_batch_frame(error=True), tmp_path / "bad")
    assert paths == [] and len(skipped) == 3
    assert list((tmp_path / "bad").glob("*.png")) == []
