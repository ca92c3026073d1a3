"""The session-end check in ``conftest.py``: a run that leaves a non-daemon thread or a child
process behind fails, names it, and still exits (it does not wait for the thread forever)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

LEAKS = """
import subprocess, sys, threading

stop = threading.Event()


def test_leaks_a_thread():
    threading.Thread(target=stop.wait, args=(120,), name="leaky-worker").start()


def test_leaks_a_process():  # deaf to SIGTERM: the check must kill it
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    print(f"CHILD {proc.pid}")
"""

CLEAN = """
import subprocess, sys, threading, time


def test_stops_what_it_starts():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="tidy-worker")
    t.start()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stop.set()
    t.join()


def test_a_thread_that_ends_within_the_grace():
    threading.Thread(target=time.sleep, args=(0.3,), name="finishing-worker").start()
"""


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    """Run pytest on one test file with this suite's conftest beside it, in a subprocess (the
    check ends a leaking run with os._exit)."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text(textwrap.dedent(body))
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_x.py"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:  # the leaked thread waits 120 s: a run that waits for it times out here instead
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and what it leaked
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_leaked_thread_and_process_fail_the_run_and_are_named(tmp_path):
    r = _run(tmp_path, LEAKS)
    child = int(re.search(r"CHILD (\d+)", r.stdout)[1])
    try:
        assert "2 passed" in r.stdout
        assert r.returncode == pytest.ExitCode.TESTS_FAILED, r.stdout + r.stderr
        assert "left behind by the tests" in r.stdout
        assert "non-daemon thread 'leaky-worker'" in r.stdout
        assert f"child process {child}: {sys.executable} -c import signal, time" in r.stdout
        # the check stopped the child instead of leaving it to outlive the run
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
    finally:
        if psutil.pid_exists(child):
            psutil.Process(child).kill()


def test_a_tidy_run_passes(tmp_path):
    r = _run(tmp_path, CLEAN)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "left behind" not in r.stdout
