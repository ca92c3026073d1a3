"""Fuzz every CLI command with mutated real inputs (issue 14, item 11).

Hypothesis mutates real files (G-code, STL, 3MF, TOML profiles and scenarios, Klipper
``printer.cfg``, CSV manifests and sweeps, rig session folders): numbers become ``nan``,
``inf``, ``1e308``, ``0`` or ``-1``, bytes are cut, deleted, inserted or flipped, lines
duplicated. Each example runs a batch of commands in a child process under an address
space limit (``RLIMIT_AS``) and a per-command alarm, calling ``slicer_energy.cli.main``
in turn so that the interpreter and imports are paid once per batch, not per command.
The only acceptable outcomes: exit 0, or exit 2 whose last stderr line is the one
``slicer-energy: error: ...`` line; never a traceback, a hang or a crash.

The normal run is seeded (``derandomize``) and small; ``SLICER_ENERGY_FUZZ_LONG=1`` or
``-m fuzz_long`` runs many more examples with random seeds. Inputs from ``../shared`` are
skipped when it is absent; files shipped in the repository always run.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
LONG = os.environ.get("SLICER_ENERGY_FUZZ_LONG") == "1"
MEM_LIMIT = 4 << 30  # bytes of address space for the child
CASE_TIMEOUT_S = 60  # one command; a hang fails the case
BATCH = 8  # mutated inputs per child process

ABSURD = [
    b"nan", b"inf", b"-inf", b"1e308", b"-1e308", b"1e999", b"0", b"-0", b"-1", b"-3000",
    b"1e-300", b"99999999999999999999", b"", b"x", b"0x1F",
]  # fmt: skip
NUMBER = re.compile(rb"(?<![A-Za-z_])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _pair(body, n: int, fixtures: tuple[str, ...] = ()):
    """(seeded test of ``n`` examples, long test of 25 n random examples) for ``body``.

    The long one is marked ``fuzz_long`` and skips unless SLICER_ENERGY_FUZZ_LONG=1 or
    ``-m fuzz_long`` selected it.
    """

    def run(request, long: bool) -> None:
        kw = {name: request.getfixturevalue(name) for name in fixtures}
        cfg = settings(
            max_examples=25 * n if long else n,
            derandomize=not long,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        cfg(given(data=st.data())(lambda data: body(data=data, **kw)))()

    def short(request):
        run(request, False)

    @pytest.mark.fuzz_long
    def long_(request):
        if not (LONG or "fuzz_long" in (request.config.getoption("markexpr") or "")):
            pytest.skip("long fuzz run: set SLICER_ENERGY_FUZZ_LONG=1 or pass -m fuzz_long")
        run(request, True)

    short.__doc__ = long_.__doc__ = body.__doc__
    return short, long_


@st.composite
def mutations(draw, data: bytes) -> bytes:
    """One to three edits of ``data``, biased towards numbers (where the lies hide)."""
    for _ in range(draw(st.integers(1, 3))):
        op = draw(
            st.sampled_from(["number", "number", "number", "cut", "del", "ins", "dup", "flip"])
        )
        n = len(data)
        if op == "number":
            spans = [m.span() for m in NUMBER.finditer(data[:200_000])]
            if spans:
                a, b = spans[draw(st.integers(0, len(spans) - 1))]
                data = data[:a] + draw(st.sampled_from(ABSURD)) + data[b:]
                continue
            op = "cut"
        i = draw(st.integers(0, n))
        if op == "cut":
            data = data[:i]
        elif op == "del":
            data = data[:i] + data[i + draw(st.integers(1, 64)) :]
        elif op == "ins":
            data = data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
        elif op == "dup":
            j = data.find(b"\n", i) + 1 or n
            k = data.rfind(b"\n", 0, i) + 1
            data = data[:j] + data[k:j] * draw(st.integers(1, 50)) + data[j:]
        elif op == "flip" and n:
            i = min(i, n - 1)
            data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
    return data


# ---- the child: run commands in-process, one alarm each ----

CHILD = r"""
import contextlib, io, json, signal, sys, traceback
from slicer_energy.cli import main

class Hang(BaseException):
    pass

def on_alarm(*_):
    raise Hang()

signal.signal(signal.SIGALRM, on_alarm)
cases, timeout, out_path = json.loads(sys.stdin.read())
results = []
for argv in cases:
    err = io.StringIO()
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 1
    except Hang:
        rc, err = "hang", io.StringIO(f"no answer within {timeout} s")
    except BaseException:
        rc = "traceback"
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
    results.append({"argv": argv, "rc": rc, "stderr": err.getvalue()})
    with open(out_path, "w") as fh:  # after each case: a crash still reports the ones before
        json.dump(results, fh)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def run_cases(cases: list[list[str]], work: Path) -> list[dict]:
    """Run CLI argv lists in one child process; return their outcomes."""
    out = work / "results.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps([cases, CASE_TIMEOUT_S, str(out)]),
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        preexec_fn=_limit_memory,
        timeout=CASE_TIMEOUT_S * len(cases) + 60,
    )
    done = json.loads(out.read_text()) if out.exists() else []
    if proc.returncode != 0:  # killed (memory, signal): blame the first case not done
        lost = cases[len(done)] if len(done) < len(cases) else cases[-1]
        pytest.fail(f"child died (rc {proc.returncode}) on {lost}: {proc.stderr[-2000:]}")
    return done


def check(results: list[dict], inputs: dict[str, bytes]) -> None:
    """Exit 0, or exit 2 ending in exactly one 'slicer-energy: error:' line; no traceback."""
    bad = []
    for r in results:
        err = r["stderr"]
        lines = [ln for ln in err.splitlines() if ln.strip()]
        ok = "Traceback" not in err and (
            r["rc"] == 0
            or (
                r["rc"] == 2
                and lines
                and lines[-1].startswith("slicer-energy: error: ")
                and sum(ln.startswith("slicer-energy: error") for ln in lines) == 1
            )
        )
        if not ok:
            bad.append(r)
    if bad:
        r = bad[0]
        files = {n: d[:300] for n, d in inputs.items() if n in " ".join(r["argv"])}
        pytest.fail(
            f"{len(bad)} of {len(results)} commands misbehaved; first: {r['argv']} -> rc "
            f"{r['rc']}\n{r['stderr'][-3000:]}\ninputs (first 300 bytes): {files}"
        )


def fuzz(data, seeds: dict[str, bytes], argvs) -> None:
    """Draw BATCH mutated copies of a seed file, run ``argvs(path)`` on each, check all."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        work = Path(tmp)
        cases, inputs = [], {}
        for i in range(BATCH):
            name = data.draw(st.sampled_from(sorted(seeds)), label="seed")
            blob = data.draw(mutations(seeds[name]), label="mutation")
            p = work / f"in{i}_{name}"
            p.write_bytes(blob)
            inputs[p.name] = blob
            cases.extend(argvs(p, work, data))
        check(run_cases(cases, work), inputs)


def _read(*paths: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths if p.is_file()}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found (../shared is absent)")
    return path


# ---- seeds ----


@functools.cache  # one seed per run: hypothesis replays draws against the same bytes
def _gcode_seed() -> bytes:
    """The first 4000 lines of a small corpus print (a few ms to plan)."""
    import gzip

    g = _need(CORPUS / "gcode" / "theshamot__cube_0.2mm_PLA_ENDER3_11m.gcode.gz")
    with gzip.open(g, "rb") as fh:
        return b"".join(fh.readline() for _ in range(4000))


def _stl_seeds() -> dict[str, bytes]:
    return _read(
        _need(CORPUS / "stl" / "calibration_cube_nmgrl.stl"), CORPUS / "stl" / "vase_12across.stl"
    )


PROFILE = REPO / "hardware" / "fdm" / "prusa-mk3s.toml"
SCENARIO = REPO / "lca" / "scenarios" / "phone-case.toml"
SWEEP = b'process = ["sls", "mls"]\ncopies = [1, 4]\ngrid = ["DE"]\n[mls]\nvariant = ["nominal"]\n'


def _gcode_file(data):
    import gzip

    seed = _gcode_seed()
    seeds = {"cube.gcode": seed, "cube.gcode.gz": gzip.compress(seed, mtime=0)}

    def argvs(p, work, d):
        mode = d.draw(st.sampled_from(["marlin", "klipper", "prusa"]))
        return [["gcode", str(p), "--json", "--mode", mode]]

    fuzz(data, seeds, argvs)


def _gcode_profile_toml(data):
    """Shipped profile (always runs) mutated; the G-code is a short built-in print."""
    gcode = b"M140 S60\nM104 S210\nM190 S60\nM109 S210\nG28\nG1 Z0.2 F1200\n" + b"".join(
        b"G1 X%d Y%d E%.2f F%d\n" % (10 + i % 50, 10 + i % 37, i * 0.05, 1200 + 60 * (i % 40))
        for i in range(400)
    )

    def argvs(p, work, d):
        g = work / "p.gcode"
        g.write_bytes(gcode)
        return [["gcode", str(g), "--printer", str(p), "--json"]]

    fuzz(data, _read(PROFILE), argvs)


def _klipper_printer_cfg(data):
    seeds = _read(*sorted(_need(CORPUS / "gcode" / "printer_configs").glob("*printer.cfg")))
    seed = _gcode_seed()

    def argvs(p, work, d):
        g = work / "k.gcode"
        g.write_bytes(seed)
        return [["gcode", str(g), "--printer-config", str(p), "--json"]]

    fuzz(data, seeds, argvs)


@functools.cache
def _mesh_seeds() -> dict[str, bytes]:
    seeds = _stl_seeds()
    try:  # a 3MF of the same cube, written by trimesh
        import trimesh

        cube = trimesh.load(CORPUS / "stl" / "calibration_cube_nmgrl.stl")
        blob = trimesh.exchange.export.export_mesh(cube, None, file_type="3mf")
    except Exception:  # noqa: BLE001 - no 3MF writer: the STL seeds remain
        return seeds
    # the same bytes on every run (zip entries carry the time of writing)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            dst.writestr(fixed, src.read(info), zipfile.ZIP_DEFLATED)
    seeds["cube.3mf"] = out.getvalue()
    return seeds


def _mesh_commands(data):
    """voxelize, predict (sls, mls, fdm) and compare on mutated STL/3MF parts."""

    def argvs(p, work, d):
        cmd = d.draw(
            st.sampled_from(["voxelize", "predict-sls", "predict-mls", "predict-fdm", "compare"])
        )
        if cmd == "voxelize":
            return [["voxelize", str(p), "--json"]]
        if cmd == "compare":
            return [["compare", str(p), "--json"]]
        return [["predict", str(p), "--process", cmd[8:], "--json"]]

    fuzz(data, _mesh_seeds(), argvs)


def _lca_scenario(data):
    def argvs(p, work, d):
        return [["lca", str(p), "--json", "--energy", "pinned", "--monte-carlo", "20"]]

    fuzz(data, _read(SCENARIO), argvs)


def _batch_sweep_and_manifest(data):
    part = _need(CORPUS / "stl" / "calibration_cube_nmgrl.stl")
    manifest = b"path\n" + str(part).encode() + b"\n"

    def argvs(p, work, d):
        out = work / f"out_{p.stem}"
        if p.name.endswith("sweep.toml"):
            return [["batch", str(part), "--sweep", str(p), "--out", str(out), "--quiet"]]
        return [["batch", "--manifest", str(p), "--out", str(out), "--quiet"]]

    fuzz(data, {"sweep.toml": SWEEP, "manifest.csv": manifest}, argvs)


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory) -> Path:
    """A rig session from the virtual printer, made once in a child process."""
    out = tmp_path_factory.mktemp("rig")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "slicer_energy.cli", "rig", "demo", "--out", str(out)]
    subprocess.run([*cmd, "--scale", "400", "--tail", "2"], check=True, capture_output=True,
                   env=env, timeout=300)  # fmt: skip
    (session,) = [p for p in out.iterdir() if p.is_dir()]
    return session


def _calibrate_session(session_dir, data):
    """One file of a session folder mutated; calibrate on it and on an intact twin."""
    seeds = {p.name: p.read_bytes() for p in session_dir.iterdir() if p.is_file()}

    def argvs(p, work, d):
        sess = work / f"s_{p.name}"
        shutil.copytree(session_dir, sess)
        twin = work / "twin"
        if not twin.exists():
            shutil.copytree(session_dir, twin)
        shutil.copyfile(p, sess / p.name.split("_", 1)[1])
        out = work / f"{p.name}.toml"
        return [["calibrate", str(sess), str(twin), "--out", str(out), "--json"]]

    fuzz(data, seeds, argvs)


def test_fuzz_commands_without_input(tmp_path):
    """claim and samples take no file: run them once each in the same harness."""
    cases = [
        ["claim", "--json", "--energy", "pinned"],
        ["samples", "--out", str(tmp_path / "samples")],
    ]
    check(run_cases(cases, tmp_path), {})


test_fuzz_gcode_file, test_fuzz_long_gcode_file = _pair(_gcode_file, 5)
test_fuzz_gcode_profile_toml, test_fuzz_long_gcode_profile_toml = _pair(_gcode_profile_toml, 4)
test_fuzz_klipper_printer_cfg, test_fuzz_long_klipper_printer_cfg = _pair(_klipper_printer_cfg, 3)
test_fuzz_mesh_commands, test_fuzz_long_mesh_commands = _pair(_mesh_commands, 5)
test_fuzz_lca_scenario, test_fuzz_long_lca_scenario = _pair(_lca_scenario, 3)
test_fuzz_batch_sweep_and_manifest, test_fuzz_long_batch_sweep_and_manifest = _pair(
    _batch_sweep_and_manifest, 1
)
test_fuzz_calibrate_session, test_fuzz_long_calibrate_session = _pair(
    _calibrate_session, 3, ("session_dir",)
)
