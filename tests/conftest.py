"""Shared fixtures: paths to ../shared, backends to test, sample parts; and the session-end
check that nothing a test started (non-daemon thread, child process) outlives the run."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SLICER_ENERGY_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
# No user's config file changes what a test sees (its printer, prices, grid); a test of the
# config file points SLICER_ENERGY_CONFIG at its own. Subprocesses inherit this.
os.environ["SLICER_ENERGY_CONFIG"] = os.devnull


def need_shared(*parts: str) -> Path:
    """Path below ../shared, or skip the test with the reason."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found (../shared is not beside the checkout)")
    return p


@pytest.fixture(autouse=True, scope="session")
def _user_data_dir(tmp_path_factory):
    """Calibrated profiles the tests write go to a temporary folder, never the user's own
    (``calibrate`` without ``--out`` writes to the user data folder)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLICER_ENERGY_DATA", str(tmp_path_factory.mktemp("user-data")))
        yield


def check_record(rec: dict) -> dict:
    """``rec`` validated against the record schema shipped in the package (raises naming
    the key that is wrong); returned for chaining."""
    import jsonschema

    from slicer_energy.record import schema

    jsonschema.validate(rec, schema(), cls=jsonschema.Draft202012Validator)
    return rec


@pytest.fixture
def example_session(tmp_path) -> Path:
    """A writable copy of the first example rig session shipped in ``firmware_logs/``."""
    from slicer_energy.resources import data_dir

    root = Path(str(data_dir("firmware_logs")))
    src = sorted(p for p in root.iterdir() if p.is_dir() and (p / "meta.toml").exists())[0]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _backends() -> list:
    from slicer_energy.backend import cupy_available

    params = [pytest.param("numpy", id="numpy")]
    params.append(
        pytest.param(
            "cupy",
            id="cupy",
            marks=pytest.mark.skipif(not cupy_available(), reason="no CuPy / CUDA device"),
        )
    )
    return params


@pytest.fixture(params=_backends())
def xp(request):
    from slicer_energy.backend import get_xp

    return get_xp(request.param)


@contextlib.contextmanager
def octoprint_singletons(base: Path):
    """OctoPrint's settings and plugin manager are process singletons: set up those no other
    test did (settings under ``base``), yield the settings, and clear what this set up."""
    import octoprint.plugin
    import octoprint.settings

    had_settings = octoprint.settings._instance is not None
    had_plugins = octoprint.plugin._instance is not None
    settings = octoprint.settings.settings(init=not had_settings, basedir=str(base))
    if not had_plugins:
        octoprint.plugin.plugin_manager(
            init=True,
            plugin_folders=[],
            plugin_bases=[],
            plugin_entry_points=[],
            plugin_disabled_list=[],
        )
    try:
        yield settings
    finally:
        if not had_settings:
            octoprint.settings._instance = None
        if not had_plugins:
            octoprint.plugin._instance = None


@pytest.fixture(scope="module")
def octoprint_env(tmp_path_factory):
    """(OctoPrint's settings, a base folder) for a test module's OctoPrint Virtual Printers."""
    pytest.importorskip("octoprint")
    base = tmp_path_factory.mktemp("octoprint")
    with octoprint_singletons(base) as settings:
        yield settings, base


# ------------------------------------------------------------------ session-end leftovers

LEFTOVER_GRACE_S = 2.0  # what is still stopping gets this long before it counts as left behind
_LEFTOVER_EXIT = pytest.StashKey[int]()


def _multiprocessing_helpers() -> set[int]:
    """multiprocessing's resource tracker and fork server (Dask's worker processes start
    them): they live as long as the interpreter by design and end with it."""
    rt = sys.modules.get("multiprocessing.resource_tracker")
    fs = sys.modules.get("multiprocessing.forkserver")
    return {
        getattr(rt and rt._resource_tracker, "_pid", None),
        getattr(fs and fs._forkserver, "_forkserver_pid", None),
    }


def _running_children(psutil) -> list:
    """This process's live descendants (zombies have exited: they cannot outlive the run)."""
    out = []
    helpers = _multiprocessing_helpers()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.pid not in helpers and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _leftovers(grace_s: float) -> list[str]:
    """Non-daemon threads (other than main) and child processes still running after
    ``grace_s``, one line each; the processes are then terminated (killed if they must be)."""
    deadline = time.monotonic() + grace_s
    threads = [
        t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()
    ]
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    frames = sys._current_frames()
    stdlib = sysconfig.get_paths()["stdlib"]
    lines = []
    for t in threads:
        if t.is_alive():
            f = frames.get(t.ident)
            # where it waits in its own code, not in threading.py
            while f is not None and f.f_back and f.f_code.co_filename.startswith(stdlib):
                f = f.f_back
            where = f" at {f.f_code.co_filename}:{f.f_lineno}" if f else ""
            lines.append(f"non-daemon thread {t.name!r}{where}")
    try:
        import psutil
    except ImportError:  # OctoPrint (test extra) brings it; without it, threads only
        return lines
    procs = _running_children(psutil)
    while procs and time.monotonic() < deadline:
        time.sleep(0.05)
        procs = _running_children(psutil)
    for p in procs:
        try:
            lines.append(f"child process {p.pid}: {' '.join(p.cmdline())[:200]}")
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    for p in psutil.wait_procs(procs, timeout=2.0)[1]:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    return lines


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run, naming them, when tests left threads or processes behind: a non-daemon
    thread keeps the interpreter from exiting (the test command never returns)."""
    lines = _leftovers(LEFTOVER_GRACE_S)
    if not lines:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    head = "left behind by the tests (stop them in the fixture's teardown)"
    if reporter is not None:
        reporter.line("")  # end the progress line
        reporter.write_sep("!", head, red=True)
        for ln in lines:
            reporter.write_line(ln)
    else:
        print(head + ":\n" + "\n".join(lines), file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if any(ln.startswith("non-daemon thread") for ln in lines):
        session.config.stash[_LEFTOVER_EXIT] = int(session.exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit now if a non-daemon thread is left: the interpreter would wait for it forever."""
    code = config.stash.get(_LEFTOVER_EXIT, None)
    if code is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
