"""``slicer-energy batch`` as a user runs it: Ctrl-C / SIGTERM stop it, and it listens on loopback.

Each test runs the real command in its own process group, sends the real signal, and
checks the process tree with psutil: what listens while it runs, what is left after.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trimesh

from slicer_energy.batch.results import read_results

pytest.importorskip("distributed")

COPIES = 4
PARTS = 4
TOTAL = PARTS * 2 * COPIES  # parts × (sls, mls) × copies


@pytest.fixture
def batch_cmd(tmp_path: Path) -> list[str]:
    """32 jobs on one worker, one Parquet file per row. ``--no-reuse``: each job voxelises
    its part (~0.1 s), so the worker, not the writing, sets the pace and a signal after
    the first rows lands mid-run."""
    parts = []
    for i in range(PARTS):
        p = tmp_path / f"sphere{i}.stl"
        trimesh.creation.icosphere(subdivisions=3, radius=25 + 5 * i).export(p)
        parts.append(str(p))
    sweep = tmp_path / "s.toml"
    copies = list(range(1, COPIES + 1))
    sweep.write_text(f'process = ["sls", "mls"]\ncopies = {copies}\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "slicer_energy.cli", "batch", *parts, "--sweep", str(sweep)]
    cmd += ["--out", str(tmp_path / "res"), "--workers", "1", "--flush-every", "1"]
    return cmd + ["--no-reuse"]


class Batch:
    """One ``batch`` process in its own session; stdout and stderr go to files."""

    def __init__(self, cmd: list[str], folder: Path, n: int) -> None:
        self.out_path, self.err_path = folder / f"stdout{n}.txt", folder / f"stderr{n}.txt"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
        self.ps = psutil.Process(self.proc.pid)

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Kill whatever of the tree is still alive (teardown, also on failure)."""
        procs = self.tree()
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
        if self.proc.poll() is None:
            self.proc.wait(10)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[Batch] = []

    def run(cmd: list[str]) -> Batch:
        started.append(Batch(cmd, tmp_path, len(started)))
        return started[-1]

    yield run
    for b in started:
        b.stop()


def _wait_for_rows(b: Batch, out: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(out.glob("*.parquet")):
        assert b.proc.poll() is None, f"batch ended before the signal: {b.stderr}"
        assert time.monotonic() < deadline, "no rows written in time"
        time.sleep(0.05)


def _listening(procs: list[psutil.Process]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket of these processes."""
    out = []
    for p in procs:
        try:
            conns = p.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        out += [(p.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == "LISTEN"]
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_batch_keeps_rows_and_rerun_resumes(batch_cmd, start, tmp_path, sig):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) or ``kill`` (SIGTERM
    to the main process): exit 130 soon, no process left, the rows written are kept and
    readable, and the same command again runs only the remaining jobs."""
    out = tmp_path / "res"
    b = start(batch_cmd)
    _wait_for_rows(b, out)
    tree = b.tree()
    assert len(tree) >= 2, "expected a worker process"
    # While it runs, nothing listens beyond this machine (scheduler, nanny, worker).
    listening = _listening(tree)
    assert listening, "the cluster should listen on loopback"
    for pid, ip, port in listening:
        assert ipaddress.ip_address(ip).is_loopback, f"pid {pid} listens on {ip}:{port}"
    if sig == signal.SIGINT:
        os.killpg(b.proc.pid, sig)
    else:
        b.proc.send_signal(sig)
    assert b.proc.wait(timeout=60) == 130, b.stderr
    gone, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, f"left behind: {alive}"
    err = b.stderr
    assert "Traceback" not in err and "Exception ignored" not in err, err
    m = re.search(r"interrupted \((SIG\w+)\): (\d+) of (\d+) jobs? done", err)
    assert m, err
    assert m.group(1) == sig.name and int(m.group(3)) == TOTAL
    first = read_results(out)
    assert 0 < len(first) < TOTAL, f"the signal must land mid-run: {len(first)} rows"
    assert first["job_id"].is_unique
    assert int(m.group(2)) == len(first)
    assert not list(out.glob(".*.tmp"))

    again = start(batch_cmd + ["--quiet"])
    assert again.proc.wait(timeout=300) == 0, again.stderr
    summary = f"{TOTAL} jobs: {len(first)} already done, {TOTAL - len(first)} run (0 with errors)"
    assert summary in again.stdout
    final = read_results(out)
    assert len(final) == TOTAL and final["job_id"].is_unique
    assert final["error"].isna().all()


def _get(url: str) -> int:
    """HTTP status of a GET."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_no_dashboard_by_default():
    """The cluster ``batch`` starts serves no dashboard page unless asked (before: the
    dashboard, or its 'install bokeh' page, on every interface)."""
    from slicer_energy.batch.run import make_client

    client, cluster = make_client("local", workers=1)
    try:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        port = client.scheduler_info()["services"]["dashboard"]  # the HTTP server
        assert _get(f"http://127.0.0.1:{port}/health") == 200
        assert _get(f"http://127.0.0.1:{port}/status") == 404
    finally:
        client.close()
        cluster.close()


@pytest.mark.skipif(importlib.util.find_spec("bokeh") is None, reason="bokeh not installed")
def test_dashboard_on_request_on_loopback():
    from slicer_energy.batch.run import make_client

    client, cluster = make_client("local", workers=1, dashboard=True)
    try:
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        assert _get(cluster.dashboard_link) == 200
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize(
    "extra, expect",
    [
        pytest.param([], "--dashboard needs bokeh", id="no-bokeh"),
        (["--scheduler", "tcp://127.0.0.1:1"], "with --scheduler use that scheduler's own"),
    ],
)
def test_dashboard_refused_with_one_line(tmp_path, capsys, extra, expect):
    """``--dashboard`` without bokeh, or for a remote scheduler: exit 2 before any work."""
    if not extra and importlib.util.find_spec("bokeh") is not None:
        pytest.skip("bokeh is installed")
    from slicer_energy.cli import main

    out = tmp_path / "res"
    assert main(["batch", "phone_case", "--dashboard", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err, err
    assert not out.exists()
