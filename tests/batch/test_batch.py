"""Batch runs on a real Dask LocalCluster: equal to single predictions, resumable, robust."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trimesh

from slicer_energy.batch.run import (
    load_sweep,
    make_client,
    part_spec,
    plan_jobs,
    read_manifest,
    read_results,
    run_batch,
)
from slicer_energy.cli import main
from slicer_energy.errors import SettingsError
from slicer_energy.predict import predict_part
from slicer_energy.samples import resolve_part

from conftest import check_record

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster: 2 worker processes, one thread each."""
    c, cluster = make_client("local", workers=2)
    try:
        yield c
    finally:
        try:
            c.close()
        finally:
            cluster.close()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SWEEP = """\
process = ["sls", "mls"]
copies = [1, "fill"]
grid = ["DE", "FR"]
[mls]
variant = ["nominal", "high"]
"""


def test_cluster_has_two_worker_processes(client):
    pids = client.run(os.getpid)
    assert len(pids) == 2
    assert len(set(pids.values())) == 2
    assert os.getpid() not in pids.values()


def test_batch_equals_single_predict(client, tmp_path):
    """Every batch row equals ``predict`` run alone (mesh re-voxelised) for its settings."""
    sweep = load_sweep(_write(tmp_path / "sweep.toml", SWEEP))
    cyl = tmp_path / "cylinder.stl"
    trimesh.creation.cylinder(radius=15, height=40, sections=48).export(cyl)
    parts = [part_spec("phone_case"), part_spec(str(cyl))]
    out = tmp_path / "res.parquet"
    res = run_batch(parts, sweep, out, client, progress=None)
    # 2 parts × (sls 2 + mls 2×2) settings; each part loaded once, voxelised once per grid.
    assert (res.total, res.computed, res.errors) == (12, 12, 0)
    assert res.loads == 2
    assert res.layer_grids == 4
    df = read_results(out)
    assert len(df) == 24  # × 2 electricity mixes
    assert df.groupby("job_id").size().eq(2).all()
    assert df["error"].isna().all()

    meshes = {p.source: resolve_part(p.source) for p in parts}
    for _, r in df[df["set_grid"] == "DE"].iterrows():
        copies = r["set_copies"]
        est = predict_part(
            meshes[r["part_source"]],
            r["process"],
            copies=1 if copies == "fill" else int(copies),
            fill_build=copies == "fill",
            variant=r["set_variant"] or "nominal",
        )
        where = f"{r['part']} {r['process']} copies={copies} variant={r['set_variant']}"
        assert r["energy_kwh"] == pytest.approx(est.energy_kwh, rel=1e-12), where
        assert r["time_s"] == pytest.approx(est.time_s, rel=1e-12), where
        assert r["material_g"] == pytest.approx(est.material_g, rel=1e-12), where
        assert r["sintering.copies"] == est.extra["copies"], where
        rec = check_record(json.loads(r["record_json"]))
        assert sum(rec["by_phase_kwh"].values()) == pytest.approx(est.energy_kwh), where
        assert r["by_phase_kwh.print"] == rec["by_phase_kwh"]["print"], where
    # CO2e = kWh × the mix's factor (FR nuclear-heavy: far below DE).
    de = df[df["set_grid"] == "DE"].set_index("job_id")
    fr = df[df["set_grid"] == "FR"].set_index("job_id").loc[de.index]
    assert (fr["co2_kg"] < de["co2_kg"] / 5).all()
    assert de["co2_kg"].to_numpy() == pytest.approx(
        (de["energy_kwh"] * de["grid.gco2_per_kwh"] / 1000).to_numpy()
    )
    assert (de["grid.id"] == "DE").all()

    # Rerun: everything is already there, nothing recomputed, no duplicate rows.
    again = run_batch(parts, sweep, out, client, progress=None)
    assert (again.skipped, again.computed) == (12, 0)
    assert len(read_results(out)) == 24

    # The report reads the same directory: shared energy per part falls with copies.
    plots = tmp_path / "plots"
    assert main(["batch-report", str(out), "--plots", str(plots)]) == 0
    for name in ("energy_vs_volume.png", "sls_energy_vs_utilisation.png", "sensitivity.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from slicer_energy.batch.report import sensitivity

    sens = {s["axis"]: s for s in sensitivity(df)}
    assert sens["copies"]["mean_kwh_by_value"]["1"] > sens["copies"]["mean_kwh_by_value"]["fill"]
    assert sens["copies"]["median_ratio"] > 1.5
    assert sens["variant"]["groups"] == 4  # 2 parts × 2 copies settings
    assert sens["copies"]["groups"] == 6  # 2 parts × (sls + 2 mls variants)
    assert "grid" not in sens  # kWh does not depend on the electricity mix


def test_bad_parts_become_error_rows(client, tmp_path):
    """A manifest row naming a missing file and an unreadable mesh: error rows, rest runs."""
    good = tmp_path / "cube.stl"
    trimesh.creation.box((20, 20, 10)).export(good)
    _write(tmp_path / "broken.stl", "solid nothing\nthis is not an STL\n")
    manifest = _write(
        tmp_path / "parts.csv",
        "path,name\ncube.stl,cube\nmissing/gone.stl,gone\nbroken.stl,broken\nphone_case,\n"
        "cube.stl,cube\n",  # listed twice: its jobs run once
    )
    parts = read_manifest(manifest)
    assert parts[1].error == f"{manifest} line 3: {tmp_path / 'missing/gone.stl'}: no such file"
    out = tmp_path / "res"
    sweep = load_sweep(_write(tmp_path / "s.toml", 'copies = [1, 2]\nprocess = ["sls"]\n'))
    res = run_batch(parts, sweep, out, client, progress=None)
    assert len(parts) == 5
    assert (res.total, res.computed, res.errors) == (8, 8, 4)
    df = read_results(out).set_index("part")
    assert df.loc["gone", "error"].str.contains("line 3").all()
    assert df.loc["broken", "error"].str.contains(f"{manifest} line 4").all()
    assert df.loc["cube", "error"].isna().all()
    assert df.loc["phone_case", "error"].isna().all()
    # The cube's volume is exact; its SLS energy is positive and falls with 2 copies.
    cube = df.loc["cube"].set_index("set_copies")
    assert cube["volume_mm3"].iloc[0] == pytest.approx(4000.0)
    assert 0 < cube.loc["2", "energy_kwh"] < cube.loc["1", "energy_kwh"]


@pytest.mark.parametrize(
    "text, expect",
    [
        ('process = ["sls"]\nnozzle = [0.4]\n', "line 2: unknown axis 'nozzle'"),
        ('process = ["sls", "laser"]\n', "line 1: axis 'process': value 'laser' is not valid"),
        ("copies = [1, 0]\n", "line 1: axis 'copies': value 0 is not valid"),
        ('process = ["sls"]\n[sls]\ninfill = [10]\n', "[sls] takes no axis 'infill'"),
        ('process = "sls"\nmachine = ["no-such-machine"]\n', "line 2: sls machine 'no-such-"),
        ('process = "sls"\nmaterial = ["PA12", "Unobtainium"]\n', "line 2: axis 'material'"),
        ('grid = ["DE", "Atlantis"]\n', "line 1: axis 'grid': unknown electricity mix 'Atlantis'"),
        ('process = ["sls"]\n[mls]\nvariant = ["low"]\n', "process 'mls' is not in the"),
        # an axis no process of the sweep takes would be dropped: the jobs the user meant
        # (three layer heights) would silently be fewer jobs
        ('process = "sls"\nlayer_height = [0.15, 0.3]\n', "line 2: axis 'layer_height' applies"),
        ('process = ["fdm"]\ncopies = [1, 2]\n', "line 2: axis 'copies' applies to sls, mls only"),
        ('process = ["sls", "mls"]\ninfill = [10]\n', "not to this sweep's process(es) sls, mls"),
        # FDM by default, as in predict: a sintering axis alone names itself
        ("copies = [1, 2]\n", "line 1: axis 'copies' applies to sls, mls only"),
    ],
)
def test_bad_sweep_names_file_line_axis_value(tmp_path, text, expect):
    path = _write(tmp_path / "sweep.toml", text)
    with pytest.raises(SettingsError) as info:
        load_sweep(path)
    assert str(info.value).startswith(str(path))
    assert expect in str(info.value)


def test_cli_bad_sweep_exits_2_before_any_work(tmp_path, capsys):
    sweep = _write(tmp_path / "sweep.toml", "layer_hieght = [0.2]\n")
    out = tmp_path / "res"
    assert main(["batch", "phone_case", "--sweep", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{sweep} line 1: unknown axis 'layer_hieght'" in err
    assert not out.exists()


def test_fdm_is_the_default_process(tmp_path):
    """Like predict: no sweep, or a sweep without a process, gives FDM jobs, one per value."""
    from slicer_energy.batch.run import DEFAULT_SWEEP

    assert [j.process for j in plan_jobs([part_spec("phone_case")], DEFAULT_SWEEP)] == ["fdm"]
    sweep = load_sweep(_write(tmp_path / "s.toml", "layer_height = [0.15, 0.2, 0.3]\n"))
    jobs = plan_jobs([part_spec("phone_case")], sweep)
    assert [(j.process, j.setting("layer_height")) for j in jobs] == [
        ("fdm", 0.15),
        ("fdm", 0.2),
        ("fdm", 0.3),
    ]


def test_plan_is_cross_product_with_stable_ids(tmp_path):
    sweep = load_sweep(_write(tmp_path / "s.toml", SWEEP))
    parts = [part_spec("phone_case"), part_spec("bracket")]
    jobs = plan_jobs(parts, sweep)
    assert len(jobs) == 2 * (2 + 2 * 2)
    assert len({j.job_id for j in jobs}) == len(jobs)
    assert [j.job_id for j in plan_jobs(parts, sweep)] == [j.job_id for j in jobs]
    # the same settings on a changed file are a different job (content hash in the id)
    f = tmp_path / "p.stl"
    trimesh.creation.box((10, 10, 10)).export(f)
    a = plan_jobs([part_spec(str(f))], sweep)[0].job_id
    trimesh.creation.box((10, 10, 11)).export(f)
    assert plan_jobs([part_spec(str(f))], sweep)[0].job_id != a


def test_resume_after_sigkill(client, tmp_path):
    """Kill the batch (and its workers) mid-run; the rerun completes every job exactly once."""
    parts = []
    for i in range(4):
        p = tmp_path / f"box{i}.stl"
        trimesh.creation.box((20 + 10 * i, 30, 15 + 5 * i)).export(p)
        parts.append(str(p))
    # 80 jobs, one Parquet file each: the kill after the first file leaves plenty undone.
    copies = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
    sweep = _write(tmp_path / "s.toml", f'process = ["sls", "mls"]\ncopies = {copies}\n')
    out = tmp_path / "res.parquet"
    cmd = [sys.executable, "-m", "slicer_energy.cli", "batch", *parts, "--sweep", str(sweep)]
    cmd += ["--out", str(out), "--workers", "1", "--flush-every", "1", "--quiet"]
    total = 4 * 2 * 10
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(out.glob("*.parquet")):
            assert proc.poll() is None, "batch ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    first = read_results(out)
    assert 0 < len(first) < total, "the kill must land mid-run"
    assert first["job_id"].is_unique

    # Rerun the same batch (here on the test's cluster, not a new process: faster).
    res = run_batch([part_spec(p) for p in parts], load_sweep(sweep), out, client, progress=None)
    assert (res.total, res.skipped, res.computed) == (total, len(first), total - len(first))
    final = read_results(out)
    assert len(final) == total
    assert final["job_id"].is_unique
    assert final["error"].isna().all()
    assert not list(out.glob(".*.tmp"))


def test_fdm_jobs_pass_settings_through(client, tmp_path):
    pytest.importorskip("slicer_energy.fdm.predict", reason="the FDM model is not merged yet")
    sweep = load_sweep(
        _write(tmp_path / "s.toml", 'process = ["fdm"]\nlayer_height = [0.2, 0.3]\n')
    )
    res = run_batch([part_spec("phone_case")], sweep, tmp_path / "r", client, progress=None)
    df = read_results(tmp_path / "r")
    assert res.errors == 0, df["error"].tolist()
    for _, r in df.iterrows():
        est = predict_part(resolve_part("phone_case"), "fdm", layer_height_mm=r["set_layer_height"])
        assert r["energy_kwh"] == pytest.approx(est.energy_kwh, rel=1e-12)


def test_progress_line_shows_done_rate_and_eta():
    import io

    from slicer_energy.batch.results import Progress

    buf = io.StringIO()
    bar = Progress(4, buf, skipped=2)
    bar.update(1, final=True)
    bar.update(1, errors=1, final=True)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "resuming: 2 job(s) already in the results, skipped"
    assert "1/4 jobs" in lines[1] and "jobs/s" in lines[1] and "ETA 0:" in lines[1]
    assert "2/4 jobs" in lines[2] and "errors 1" in lines[2]
    assert lines[2].startswith("[" + "#" * 12 + " " * 12 + "]")


def test_writer_removes_tmp_files_of_killed_runs_only(tmp_path):
    """A kill mid-write leaves a ``.tmp``; the next writer deletes it, not a live writer's."""
    from slicer_energy.batch.results import ResultWriter

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".part-20260101T000000-{dead.pid}-00000.parquet.tmp"
    live = tmp_path / f".part-20260101T000000-{os.getpid()}-00000.parquet.tmp"
    orphan.write_bytes(b"half a parquet file")
    live.write_bytes(b"being written")
    ResultWriter(tmp_path)
    assert not orphan.exists()
    assert live.exists()


def _results_dir(tmp_path: Path, n: int = 2) -> Path:
    """A results directory of ``n`` one-row files, as the batch writes them."""
    from slicer_energy.batch.results import ResultWriter

    out = tmp_path / "res"
    w = ResultWriter(out, every_rows=1)
    for i in range(n):
        w.add([{"job_id": f"j{i}", "part": "p", "process": "sls", "error": None}])
    return out


@pytest.mark.parametrize(
    "damage, expect",
    [
        ("truncate", "not a readable Parquet file (Parquet magic bytes not found"),
        ("empty", "not a readable Parquet file (Parquet file size is 0 bytes)"),
        ("foreign", "not a batch results file (no 'job_id' column)"),
    ],
)
def test_batch_report_names_damaged_results_file(tmp_path, capsys, damage, expect):
    """A damaged or foreign ``.parquet`` in the results: exit 2, one line naming it
    (before: pyarrow's ``ArrowInvalid`` traceback)."""
    import pandas as pd

    out = _results_dir(tmp_path)
    bad = sorted(out.glob("*.parquet"))[1]
    if damage == "truncate":
        bad.write_bytes(bad.read_bytes()[:100])
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        pd.DataFrame({"x": [1]}).to_parquet(bad)
    assert main(["batch-report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slicer-energy: error: {bad}: {expect}"), err
    assert err.count("\n") == 1


def test_resume_sets_unreadable_file_aside_and_reruns_its_jobs(client, tmp_path, capsys):
    """A results file damaged after it was written (a copy, a disk): the rerun warns with
    its name, renames it ``.corrupt`` (kept, no longer read) and runs its jobs again, so
    the results are whole and the report reads them."""
    sweep = load_sweep(_write(tmp_path / "s.toml", 'process = "sls"\ncopies = [1, 2]\n'))
    parts = [part_spec("phone_case")]
    out = tmp_path / "res"
    run_batch(parts, sweep, out, client, progress=None, flush_rows=1)
    files = sorted(out.glob("*.parquet"))
    assert len(files) == 2
    lost = read_results(files[0])["job_id"].tolist()
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # cut in the middle
    capsys.readouterr()
    res = run_batch(parts, sweep, out, client, progress=None)
    err = capsys.readouterr().err
    assert f"slicer-energy: warning: {files[0]}: not a readable Parquet file" in err
    assert f"renamed to {files[0].name}.corrupt, its jobs run again" in err
    assert (res.skipped, res.computed, res.errors) == (1, 1, 0)
    assert files[0].with_name(files[0].name + ".corrupt").read_bytes() == data[: len(data) // 2]
    df = read_results(out)
    assert sorted(df["job_id"]) == sorted(plan_job.job_id for plan_job in plan_jobs(parts, sweep))
    assert lost[0] in set(df["job_id"])
    assert main(["batch-report", str(out)]) == 0


def test_cli_job_errors_are_one_line_each_naming_part_and_process(tmp_path, capsys):
    """A part given in the wrong unit (a 20 mm box read as metres: a 426 TiB grid) fails
    its job, not the batch: one line naming the part and process, no traceback."""
    box = tmp_path / "box.stl"
    trimesh.creation.box((20, 30, 15)).export(box)
    out = tmp_path / "res"
    argv = ["batch", str(box), "phone_case", "--units", "m", "--out", str(out)]
    prices = ["--price-per-kwh", "0.3", "--currency", "EUR", "--grid", "400"]
    assert main([*argv, *prices, "--workers", "1", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    errors = [ln for ln in cap.out.splitlines() if ln.startswith("  error: ")]
    assert len(errors) == 1 and errors[0].startswith("  error: box [fdm]: "), cap.out
    assert "2 jobs: 0 already done, 2 run (1 with errors)" in cap.out
    df = read_results(out).set_index("part")
    assert df.loc["box", "error"] == errors[0].removeprefix("  error: box [fdm]: ")
    case = df.loc["phone_case"]
    assert case["energy_kwh"] > 0  # a sample part: always mm
    assert case["cost.total"] == pytest.approx(0.3 * case["energy_kwh"])
    assert case["co2_kg"] == pytest.approx(0.4 * case["energy_kwh"])
    assert case["cost.currency"] == "EUR"


def test_stop_cancels_the_clusters_pending_work(client, tmp_path):
    """Stopping (what SIGINT/SIGTERM do in the CLI) returns with the rows written and
    leaves no job on the scheduler, so an external cluster (--scheduler) does not run on."""
    import threading

    sweep = load_sweep(
        _write(tmp_path / "s.toml", f'process = "sls"\ncopies = {list(range(1, 25))}\n')
    )
    out = tmp_path / "res"
    stop = threading.Event()

    def stop_after_first_file() -> None:
        while not stop.is_set() and not list(out.glob("*.parquet")):
            time.sleep(0.02)
        stop.set()

    watcher = threading.Thread(target=stop_after_first_file)
    watcher.start()
    try:
        parts = [part_spec("phone_case")]
        res = run_batch(
            parts, sweep, out, client, progress=None, flush_rows=1, reuse_grids=False, stop=stop
        )
    finally:
        stop.set()
        watcher.join()
    assert res.interrupted
    assert 0 < res.computed < 24
    assert len(read_results(out)) == res.computed
    deadline = time.monotonic() + 30
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        assert time.monotonic() < deadline, "jobs left on the scheduler"
        time.sleep(0.05)


def test_manifest_that_is_not_utf8_text_is_one_line_error(tmp_path, capsys):
    """Found by the fuzz suite: a manifest starting with byte 0x80 gave a UnicodeDecodeError
    traceback."""
    m = tmp_path / "m.csv"
    m.write_bytes(b"\x80path\ncube.stl\n")
    with pytest.raises(SettingsError, match=r"m\.csv: not a UTF-8 text CSV"):
        read_manifest(m)
    rc = main(["batch", "--manifest", str(m), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "UTF-8" in err[0]
    assert not (tmp_path / "o").exists()


def test_sweep_that_is_not_utf8_text_is_one_line_error(tmp_path, capsys):
    """Found by the long fuzz run: a sweep file starting with byte 0x80 gave a
    UnicodeDecodeError traceback."""
    sweep = tmp_path / "s.toml"
    sweep.write_bytes(b'\x80process = ["sls"]\n')
    rc = main(["batch", "phone_case", "--sweep", str(sweep), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not a UTF-8 text file" in err[0]
