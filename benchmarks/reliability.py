"""docs/reliability.md table "Reliability": faults injected into the real rig stack and
``batch``, and what came of them.

Every rig scenario runs our :class:`~slicer_energy.rig.sim.VirtualPrinter` on a real pty, with
its :class:`~slicer_energy.rig.sim.Faults`, against the real host (``connect``/``MarlinHost``)
and :class:`~slicer_energy.rig.logger.SessionLogger`, or against ``slicer-energy rig log`` /
``batch`` run as subprocesses. The printer runs in this process, so what it executed
(``received``) and how far its line counter went are known exactly. Each scenario is repeated
over ``--runs`` seeds (the seed draws the printer, the fault positions and the fault dice).

"Recorded lost" compares what the host saw (every line through its ``on_line`` callback, every
temperature report through ``on_temps``) with what the session folder reads back
(``read_serial``, ``read_temps``); for ``rig log`` subprocesses, the printer's side (lines it
accepted, temperature reports it sent) with the folder. A print counts as "once in order" when
the commands the printer executed are the file's commands, each exactly once, in order.

    python benchmarks/reliability.py [--runs 5] [--quick]

Exit status 0 when every run had the outcome its fault should have and nothing the script
started (process, thread, pty, port, file) is left open; else 1.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from reliability_rig import (  # the scenarios; a sibling module (this folder is on sys.path)
    Run,
    batch_ctrl_c,
    dropped_ok,
    meter_loss,
    port_loss,
    resend_storm,
    reset,
    second_logger,
    sigkill,
    stale_counter,
)
from test_rig_resync import STALE_COUNTER  # reliability_rig puts tests/ on sys.path

from slicer_energy.errors import SlicerEnergyError

# ------------------------------------------------------------------ the table


def _range(runs: list[Run], key: str, fmt: str = "{:.0f}") -> str:
    vals = [r.numbers[key] for r in runs if key in r.numbers]
    if not vals:
        return "?"
    lo, hi = fmt.format(min(vals)), fmt.format(max(vals))
    return lo if lo == hi else f"{lo}–{hi}"


def _sum(runs: list[Run], key: str) -> int:
    return round(sum(r.numbers.get(key, 0) for r in runs))


def _lost(runs: list[Run], what: str) -> str:
    lost, checked = sum(r.lost for r in runs), sum(r.checked for r in runs)
    return f"{lost} of {checked} {what}"


LOGGED = "lines and temperature rows the host saw"


@dataclass
class Scenario:
    fault: str
    how: str
    run: Callable[[int, Path, bool], Run]
    details: Callable[[list[Run]], str]  # appended to the outcome
    lost: Callable[[list[Run]], str]
    max_runs: int | None = None


SCENARIOS = (
    Scenario(
        "resend storm",
        "`Faults(noise_rate=0.2)`: a fifth of the numbered lines the "
        "printer receives fail their checksum, handshake included",
        resend_storm,
        lambda rs: f"{_range(rs, 'resends')} resends per print of {_range(rs, 'lines')} lines",
        lambda rs: _lost(rs, LOGGED),
    ),
    Scenario(
        "dropped `ok`",
        "`Faults(drop_ok_rate=0.05)`: one `ok` in 20 never sent; host timeout 0.5 s",
        dropped_ok,
        lambda rs: (
            f"{_range(rs, 'timeouts')} timeouts (each: M105 nudge, stream goes on) per print"
        ),
        lambda rs: _lost(rs, LOGGED),
    ),
    Scenario(
        "stale line counter",
        f"an earlier session leaves the firmware's counter at "
        f"{STALE_COUNTER} and its answers and auto-reports unread in the port",
        stale_counter,
        lambda rs: "",
        lambda rs: _lost(rs, LOGGED),
    ),
    Scenario(
        "reset mid-print",
        "`Faults(reset_at_line=20…60)`: the board reboots (`start`), planner and counter cleared",
        reset,
        lambda rs: f"{_range(rs, 'acked')} lines acknowledged before it",
        lambda rs: _lost(rs, LOGGED),
    ),
    Scenario(
        "port loss",
        "`Faults(vanish_at_line=20…60)`: the pty closes (USB cable pulled)",
        port_loss,
        lambda rs: f"{_range(rs, 'acked')} lines acknowledged before it",
        lambda rs: _lost(rs, LOGGED),
    ),
    Scenario(
        "SIGKILL of `rig log`",
        "`rig log --no-meter --print` (subprocess; 8-layer print without its heat-up waits, "
        "printer at 10×) killed with `kill -9` 0.5–3 s after serial.log showed its `G28`",
        sigkill,
        lambda rs: (
            f"last line on disk {_range(rs, 'age_s', '{:.2f}')} s before the kill; "
            f"torn last line (skipped by the readers) in {_sum(rs, 'torn')}/{len(rs)} runs"
        ),
        lambda rs: (
            f"the tail after the last flush (flushed every 0.5 s): "
            f"{_sum(rs, 'lost_lines')} of {_sum(rs, 'lines')} lines the printer accepted "
            f"({_range(rs, 'lost_lines')} per run), {_sum(rs, 'lost_temps')} of "
            f"{_sum(rs, 'temps')} temperature reports it sent ({_range(rs, 'lost_temps')} per "
            "run); nothing before it"
        ),
    ),
    Scenario(
        "meter loss",
        "`rig log --meter pzem:PTY --meter-timeout 0.3 --print` with a pty nobody serves",
        meter_loss,
        lambda rs: "",
        lambda rs: _lost(rs, "print commands in serial.log"),
    ),
    Scenario(
        "a second logger",
        "`rig log --no-meter` on the port of a session that is heating up for its print (`M190`)",
        second_logger,
        lambda rs: "",
        lambda rs: _lost(rs, LOGGED + " (first session)"),
    ),
    Scenario(
        "Ctrl-C in `batch`",
        "SIGINT to the process group of `batch` (4 parts × sls/mls × "
        "copies, 1 worker) after its first row, then the same command again",
        batch_ctrl_c,
        lambda rs: f"{_range(rs, 'kept')} of {_range(rs, 'total')} rows kept at the interrupt",
        lambda rs: _lost(rs, "rows reported done"),
        max_runs=1,
    ),
)


def _one(sc: Scenario, seed: int, tmp: Path, quick: bool) -> Run:
    out = tmp / f"{sc.run.__name__}-{seed}"
    out.mkdir()
    try:
        return sc.run(seed, out, quick)
    except Exception as exc:  # noqa: BLE001 - a failure is an outcome for the table
        msg = re.sub(r"/dev/pts/\d+", "PTY", str(exc))  # the same text for every seed
        if isinstance(exc, SlicerEnergyError):
            return Run(f"one-line error `{type(exc).__name__}: {msg}`")
        return Run(f"crashed: {type(exc).__name__}: {msg}")


def _leftovers(fds: int, threads: set[threading.Thread], procs: set[int]) -> list[str]:
    """What this run started and did not stop: child processes, threads, open descriptors.
    Processes that were there before (run inside pytest: other tests' helpers such as
    multiprocessing's resource tracker) do not count."""
    me = psutil.Process()
    left = [
        f"process {p.pid} {p.name()}" for p in me.children(recursive=True) if p.pid not in procs
    ]
    left += [f"thread {t.name}" for t in threading.enumerate() if t not in threads]
    if me.num_fds() > fds:
        left.append(f"{me.num_fds() - fds} file descriptors (ptys, ports, files)")
    return left


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="seeds per scenario (5)")
    ap.add_argument("--quick", action="store_true", help="one seed, smaller prints (a smoke test)")
    ap.add_argument("--only", default=None, help="run the scenarios whose function name has this")
    a = ap.parse_args(argv)
    runs = 1 if a.quick else a.runs
    t0 = time.monotonic()
    fds, threads = psutil.Process().num_fds(), set(threading.enumerate())
    procs = {p.pid for p in psutil.Process().children(recursive=True)}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        print("| fault | how injected | runs | outcome | recorded lost |")
        print("|---|---|---|---|---|")
        for sc in SCENARIOS:
            if a.only and a.only not in sc.run.__name__:
                continue
            n = min(runs, sc.max_runs or runs)
            results = [_one(sc, seed, Path(tmp), a.quick) for seed in range(1, n + 1)]
            counts = collections.Counter(r.outcome for r in results)
            failed += sum(not r.ok for r in results)
            outcome = "; ".join(f"{k}: {v}/{n}" for k, v in counts.items())
            extra = sc.details(results)
            print(
                f"| {sc.fault} | {sc.how} | {n} | {outcome}{'; ' + extra if extra else ''} | "
                f"{sc.lost(results)} |",
                flush=True,
            )
    wall = time.monotonic() - t0
    left = _leftovers(fds, threads, procs)
    if left:
        print(f"left running after the scenarios: {', '.join(left)}", file=sys.stderr)
    cmd = "python benchmarks/reliability.py" + (" --quick" if a.quick else f" --runs {runs}")
    print()
    print(
        f"`{cmd}`: {dt.date.today().isoformat()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {wall:.0f} s wall; "
        f"{failed} run(s) without the expected outcome; "
        + (
            "nothing left running (child processes, threads, descriptors checked)."
            if not left
            else "left running: " + ", ".join(left) + "."
        )
    )
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
