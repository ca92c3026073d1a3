"""The fault scenarios behind ``benchmarks/reliability.py``: each runs the real rig stack (or
``rig log`` / ``batch`` as subprocesses) against the virtual printer with one fault, and returns
what came of it as a :class:`Run`. The module docstring of ``reliability.py`` says what is measured.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from slicer_energy.rig import protocol as P
from slicer_energy.rig.logger import SessionLogger, read_meta, read_serial, read_temps
from slicer_energy.rig.marlin import MarlinHost, connect, job_command, open_serial
from slicer_energy.rig.sim.physics import SimClock, draw_printer
from slicer_energy.rig.sim.printer import Faults, VirtualPrinter, demo_gcode
from slicer_energy.rig.sim.pty import PtyPort

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "rig"), str(TESTS / "batch")]  # test helpers it reuses
from test_batch_signals import Batch  # noqa: E402
from test_rig_resync import STALE_COUNTER, _earlier_session  # noqa: E402

CLI = [sys.executable, "-m", "slicer_energy.cli"]
HOST_CMDS = {"M105", "M115", "M155", "M110"}  # the host's own commands, not the print's
FAST = 400.0  # simulated seconds per real second: a 3-layer print takes about 0.5 s
STUCK_S = 30.0  # a print at FAST that has not finished by then is not going to


@dataclass
class Run:
    """One seed of one scenario: its outcome (runs with the same text are counted together),
    whether it is the expected one, recorded items lost and checked, numbers shown as ranges."""

    outcome: str
    ok: bool = False  # the outcome the fault should have
    lost: int = 0
    checked: int = 0
    numbers: dict[str, float] = field(default_factory=dict)


def _expected(lines: list[str]) -> list[str]:
    return [c for c in (job_command(ln) for ln in lines) if c]


def _job_only(cmds: list[str]) -> list[str]:
    return [c for c in cmds if c.split(" ", 1)[0] not in HOST_CMDS]


def _once_in_order(printer: VirtualPrinter, since: int, expected: list[str]) -> bool:
    return _job_only(printer.received[since:]) == expected


def _prefix_once(printer: VirtualPrinter, since: int, expected: list[str]) -> int | None:
    """Commands executed when they are the first k commands of the file, each once; else None."""
    done = _job_only(printer.received[since:])
    return len(done) if done == expected[: len(done)] else None


def _printer(
    es: contextlib.ExitStack, seed: int, faults: Faults | None = None, scale: float = FAST
) -> VirtualPrinter:
    p = VirtualPrinter(draw_printer(seed), SimClock(scale), faults).start()
    es.callback(p.stop)
    return p


def _spawn(es: contextlib.ExitStack, args: list[str], **kw) -> subprocess.Popen:
    """A CLI subprocess in its own process group, killed at the end if it is still running."""
    proc = subprocess.Popen([*CLI, *args], start_new_session=True, **kw)

    def reap() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    es.callback(reap)
    return proc


class Tap:
    """The host's ``on_line``/``on_temps``: note what the host saw, then hand it to the logger."""

    def __init__(self, logger: SessionLogger) -> None:
        self.logger = logger
        self.lines: list[tuple[str, str]] = []
        self.temp_rows = 0

    def line(self, direction: str, text: str, t_s: float) -> None:
        self.lines.append((direction, text))
        self.logger.serial(direction, text, t_s)

    def temps(self, heaters: dict[str, P.HeaterReading], t_s: float) -> None:
        self.temp_rows += len(heaters)
        self.logger.temps(heaters, t_s)

    def lost(self) -> tuple[int, int]:
        """(lost, checked): serial lines and temperature rows the host saw that the closed
        session folder does not read back."""
        folder = self.logger.folder
        logged = collections.Counter((d, t) for _ts, _w, d, t in read_serial(folder))
        missing = collections.Counter(self.lines) - logged
        temps_missing = max(0, self.temp_rows - len(read_temps(folder)))
        return sum(missing.values()) + temps_missing, len(self.lines) + self.temp_rows


def _session(
    es: contextlib.ExitStack, printer: VirtualPrinter, out: Path, label: str, **host_kw
) -> tuple[MarlinHost, SessionLogger, Tap]:
    """Logger, then host (handshake, temperature auto-reports), as ``rig log`` wires them."""
    logger = SessionLogger(out, label, name=label)
    es.callback(lambda: logger.closed or logger.close("error", summary=False))
    tap = Tap(logger)
    host_kw.setdefault("timeout_s", 2.0)
    host = connect(printer.path, 115200, on_line=tap.line, handshake_wait_s=1.0, **host_kw)
    es.callback(host.close)
    host.on_temps = tap.temps
    host.start_temperature_reports(1.0)
    return host, logger, tap


def _close(host: MarlinHost, logger: SessionLogger, tap: Tap, status: str) -> tuple[int, int]:
    host.close()
    logger.close(status, summary=False)
    return tap.lost()


# ------------------------------------------------------------------ scenarios (one seed each)


def _waiting_for(host: MarlinHost) -> str:
    """The command of the oldest line in flight (what the host waits for), or ''."""
    with host._cond:
        sent = host._history.get(host._inflight[0]) if host._inflight else None
    return sent.cmd if sent is not None else ""


def _complete_print(seed: int, out: Path, faults: Faults, layers: int, **host_kw) -> Run:
    lines = demo_gcode(layers=layers)
    with contextlib.ExitStack() as es:
        printer = _printer(es, seed, faults)
        host, logger, tap = _session(es, printer, out, f"s{seed}", **host_kw)
        since = len(printer.received)
        host.start_print(lines, name="demo")
        job = host.wait_job(STUCK_S)
        once = _once_in_order(printer, since, _expected(lines))
        waiting = _waiting_for(host)
        lost, checked = _close(host, logger, tap, job.state)
    ok = job.state == "done" and once
    outcome = (
        "done, every line executed once in order"
        if ok
        else (f"{job.state} ({job.message}), once in order: {once}")
    )
    # Marlin marks the reports of a heating wait with " W:"; auto-reports (M155) have none
    last_reports = [t for d, t in tap.lines[-20:] if d == "<" and P.parse_temperatures(t)]
    if not job.finished and last_reports and not any(" W:" in t for t in last_reports):
        outcome = (
            f"**stuck**: still printing {STUCK_S:.0f} s later, waiting for the `ok` of "
            f"`{waiting}`, which the printer finished (its reports no longer carry `W:`) but "
            "whose `ok` it dropped; the M155 auto-reports keep the host's timeout from firing"
        )
    return Run(
        outcome,
        ok,
        lost,
        checked,
        {"resends": host.resends, "timeouts": host.timeouts, "lines": len(_expected(lines))},
    )


def resend_storm(seed: int, out: Path, quick: bool) -> Run:
    return _complete_print(seed, out, Faults(noise_rate=0.2, seed=seed), 2 if quick else 6)


def dropped_ok(seed: int, out: Path, quick: bool) -> Run:
    return _complete_print(
        seed, out, Faults(drop_ok_rate=0.05, seed=seed), 2 if quick else 4, timeout_s=0.5
    )


def stale_counter(seed: int, out: Path, quick: bool) -> Run:
    lines = demo_gcode(layers=2 if quick else 4)
    with contextlib.ExitStack() as es:
        printer = _printer(es, seed)
        _earlier_session(printer.path, STALE_COUNTER, ["M155 S1", "M105", "M105"])
        host, logger, tap = _session(es, printer, out, f"s{seed}")
        m115 = host.firmware.name.startswith("Marlin")
        since = len(printer.received)
        host.start_print(lines, name="demo")
        job = host.wait_job(120)
        once = _once_in_order(printer, since, _expected(lines))
        in_step = printer.last_n == host._n
        lost, checked = _close(host, logger, tap, job.state)
    ok = job.state == "done" and once and m115 and in_step
    outcome = (
        "done, every line executed once in order, M115 answer read, counters agree"
        if ok
        else f"{job.state} ({job.message}), once {once}, M115 {m115}, counters agree {in_step}"
    )
    return Run(outcome, ok, lost, checked, {"resends": host.resends})


def _stopped_print(seed: int, out: Path, faults: Faults, quick: bool, expect: str) -> Run:
    lines = demo_gcode(layers=2 if quick else 4)
    with contextlib.ExitStack() as es:
        printer = _printer(es, seed, faults)
        host, logger, tap = _session(es, printer, out, f"s{seed}")
        since = len(printer.received)
        host.start_print(lines, name="demo")
        job = host.wait_job(60)
        done = _prefix_once(printer, since, _expected(lines))
        lost, checked = _close(host, logger, tap, "error")
    ok = job.state == "error" and expect in job.message and done == job.acked
    outcome = (
        f'error with the message "{expect} …"; the lines acknowledged are the '
        "lines executed, the file's first ones, each once"
        if ok
        else f"{job.state} ({job.message}); executed prefix {done}, acked {job.acked}"
    )
    return Run(outcome, ok, lost, checked, {"acked": job.acked})


def reset(seed: int, out: Path, quick: bool) -> Run:
    at = random.Random(f"reset{seed}").randint(20, 60)
    return _stopped_print(
        seed,
        out,
        Faults(reset_at_line=at, seed=seed),
        quick,
        "the printer reset during the print (it printed 'start')",
    )


def port_loss(seed: int, out: Path, quick: bool) -> Run:
    at = random.Random(f"vanish{seed}").randint(20, 60)
    return _stopped_print(
        seed, out, Faults(vanish_at_line=at, seed=seed), quick, "serial port lost"
    )


def _gcode_file(out: Path, layers: int, waits: bool = True) -> tuple[Path, list[str]]:
    """The demo print as a file; ``waits=False`` leaves out the heat-up waits (M190, M109)."""
    lines = [ln for ln in demo_gcode(layers=layers) if waits or ln[:4] not in ("M190", "M109")]
    path = out / "part.gcode"
    path.write_text("\n".join(lines) + "\n")
    return path, lines


def _log_args(printer: VirtualPrinter, out: Path, *extra: str) -> list[str]:
    return [
        "rig",
        "log",
        "--port",
        printer.path,
        "--baud",
        "115200",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def _wall(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def sigkill(seed: int, out: Path, quick: bool) -> Run:
    """``rig log --gcode`` killed with SIGKILL mid-print; the session folder is read back and
    compared with the printer's side at the moment of the kill."""
    gfile, lines = _gcode_file(out, 8, waits=False)
    rng = random.Random(f"kill{seed}")
    with contextlib.ExitStack() as es:
        printer = _printer(es, seed, scale=10.0)  # the lines stream for about 8 s
        proc = _spawn(
            es,
            _log_args(printer, out / "logs", "--no-meter", "--gcode", str(gfile), "--tail", "0"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        folder = None
        while time.monotonic() < deadline and proc.poll() is None:
            folders = list((out / "logs").glob("*")) if (out / "logs").is_dir() else []
            if folders and " G28*" in (folders[0] / "serial.log").read_text():
                folder = folders[0]
                break
            time.sleep(0.05)
        if folder is None:
            return Run(f"rig log did not start: rc {proc.poll()}")
        time.sleep(rng.uniform(0.5, 3.0))
        proc.kill()
        t_kill = time.time()
        printer_n, printer_temps = printer.last_n, printer.temp_reports
        proc.wait(10)
        time.sleep(0.3)
        heaters_on = printer.physics.target_hotend_c > 0 or printer.physics.target_bed_c > 0
        open_serial(printer.path, 115200).close()  # the lock died with the process
    raw = (folder / "serial.log").read_text()
    complete = [ln for ln in raw.split("\n")[:-1] if ln and not ln.startswith("# slicer")]
    rows = read_serial(folder)
    torn = not raw.endswith("\n")
    sent_n = [n for _ts, _w, d, t in rows if d == ">" and (n := P.split_numbered(t)[0]) is not None]
    contiguous = sorted(set(sent_n)) == list(range(max(sent_n) + 1))
    temps_rows = read_temps(folder)
    sensors = len({r["sensor"] for r in temps_rows}) or 1
    lost_lines = printer_n - max(sent_n)
    lost_temps = printer_temps - len(temps_rows) // sensors
    readable = len(complete) == len(rows) and read_meta(folder)["session"]["label"] == "part"
    mid_print = 0 < printer_n < len(_expected(lines)) + 2  # N0 M110, N1 M115, N2 M155
    ok = readable and contiguous and mid_print and proc.returncode == -signal.SIGKILL
    outcome = (
        "killed mid-print; the folder reads back (every complete line parses, meta.toml "
        "intact), sent lines on disk are N0…Nk without a gap; the port is free again"
        if ok
        else f"rc {proc.returncode}, readable {readable}, contiguous {contiguous}, "
        f"mid-print {mid_print}"
    )
    if heaters_on:
        outcome += "; the printer keeps its heater targets (no host left to switch them off)"
    age = t_kill - _wall(rows[-1][1])
    return Run(
        outcome,
        ok,
        lost_lines + max(0, lost_temps),
        printer_n + printer_temps,
        {
            "lost_lines": lost_lines,
            "lines": printer_n,
            "lost_temps": lost_temps,
            "temps": printer_temps,
            "age_s": age,
            "torn": float(torn),
        },
    )


def meter_loss(seed: int, out: Path, quick: bool) -> Run:
    """``rig log --gcode`` with a PZEM meter on a pty nobody serves."""
    gfile, lines = _gcode_file(out, 2 if quick else 3)
    with contextlib.ExitStack() as es:
        printer = _printer(es, seed)
        silent = PtyPort()
        es.callback(silent.close)
        run = subprocess.run(
            [
                *CLI,
                *_log_args(
                    printer,
                    out / "logs",
                    "--meter",
                    f"pzem:{silent.path}",
                    "--meter-timeout",
                    "0.3",
                    "--gcode",
                    str(gfile),
                    "--tail",
                    "0",
                ),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        once = _once_in_order(printer, 0, _expected(lines))
    (folder,) = (out / "logs").iterdir()
    summary = tomllib.loads((folder / "summary.toml").read_text())
    logged = _job_only(
        [
            P.split_numbered(t)[1]
            for _ts, _w, d, t in read_serial(folder)
            if d == ">" and t.startswith("N")
        ]
    )
    expected = _expected(lines)
    ok = (
        run.returncode == 1
        and summary["status"] == "meter never answered"
        and "meter never answered" in run.stdout
        and not summary["meter"]["answered"]
        and once
        and logged == expected
    )
    outcome = (
        'exit 1, status "meter never answered" (summary.toml, stdout), the print done, '
        "every line executed and logged once in order"
        if ok
        else f"rc {run.returncode}, status {summary.get('status')}, once {once}"
    )
    lost = collections.Counter(expected) - collections.Counter(logged)
    return Run(outcome, ok, sum(lost.values()), len(expected))


def second_logger(seed: int, out: Path, quick: bool) -> Run:
    """A second ``rig log`` on the port of a session that is printing."""
    lines = demo_gcode(layers=3)
    with contextlib.ExitStack() as es:
        printer = _printer(es, seed, scale=15.0)  # heat-up lasts about 8 s: a loaded machine
        # still starts the second logger (a fresh interpreter) while the first is printing
        host, logger, tap = _session(es, printer, out, f"s{seed}")
        since = len(printer.received)
        host.start_print(lines, name="demo")
        while host.job.acked < 3 and not host.job.finished:  # M190 S60 running
            time.sleep(0.01)
        second = subprocess.run(
            [*CLI, *_log_args(printer, out / "second", "--no-meter", "--duration", "1")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        mid_print = host.job.state == "printing"
        job = host.wait_job(120)
        once = _once_in_order(printer, since, _expected(lines))
        lost, checked = _close(host, logger, tap, job.state)
    err = second.stderr.strip()
    refused = (
        second.returncode == 2
        and len(err.splitlines()) == 1
        and printer.path in err
        and "in use" in err
        and not (out / "second").exists()
    )
    ok = refused and mid_print and job.state == "done" and once
    outcome = (
        'refused mid-print (exit 2, one line naming the port: "… is in use by another '
        'program …"); the first session done, every line executed once in order'
        if ok
        else f"second rc {second.returncode} ({err}), mid-print {mid_print}, first "
        f"{job.state}, once {once}"
    )
    return Run(outcome, ok, lost, checked)


def batch_ctrl_c(seed: int, out: Path, quick: bool) -> Run:
    """SIGINT to ``batch``'s process group mid-run, then the same command again."""
    import trimesh

    from slicer_energy.batch.results import read_results

    copies = 2 if quick else 4
    parts = []
    for i in range(4):
        p = out / f"sphere{i}.stl"
        trimesh.creation.icosphere(subdivisions=3, radius=25 + 5 * i).export(p)
        parts.append(str(p))
    sweep = out / "s.toml"
    sweep.write_text(f'process = ["sls", "mls"]\ncopies = {list(range(1, copies + 1))}\n')
    total = 4 * 2 * copies
    res = out / "res"
    cmd = [
        *CLI,
        "batch",
        *parts,
        "--sweep",
        str(sweep),
        "--out",
        str(res),
        "--workers",
        "1",
        "--flush-every",
        "1",
        "--no-reuse",
    ]
    with contextlib.ExitStack() as es:
        first = Batch(cmd, out, 0)
        es.callback(first.stop)
        deadline = time.monotonic() + 120
        while not list(res.glob("*.parquet")) and first.proc.poll() is None:
            if time.monotonic() > deadline:
                return Run("no rows written within 120 s")
            time.sleep(0.05)
        tree = first.tree()
        os.killpg(first.proc.pid, signal.SIGINT)
        rc = first.proc.wait(60)
        _gone, alive = psutil.wait_procs(tree, timeout=30)
        m = re.search(r"interrupted \(SIGINT\): (\d+) of (\d+) jobs? done", first.stderr)
        kept = read_results(res)
        again = Batch([*cmd, "--quiet"], out, 1)
        es.callback(again.stop)
        rc2 = again.proc.wait(300)
        final = read_results(res)
    reported = int(m.group(1)) if m else -1
    resumed = f"{total} jobs: {len(kept)} already done, {total - len(kept)} run" in again.stdout
    ok = (
        rc == 130
        and not alive
        and reported == len(kept)
        and 0 < len(kept) < total
        and "Traceback" not in first.stderr
        and rc2 == 0
        and resumed
        and len(final) == total
        and final["job_id"].is_unique
        and set(kept["job_id"]) <= set(final["job_id"])
    )
    outcome = (
        f"exit 130, no process left, the rows written kept; the rerun ran only the rest "
        f"({total} jobs in all, each once)"
        if ok
        else f"rc {rc}, alive {alive}, reported {reported}, kept {len(kept)}, rerun rc "
        f"{rc2}, resumed {resumed}, final {len(final)}"
    )
    dropped = set(kept["job_id"]) - set(final["job_id"])  # kept at the interrupt, gone later
    return Run(
        outcome,
        ok,
        max(0, reported - len(kept)) + len(dropped),
        max(reported, 0),
        {"kept": len(kept), "total": total},
    )
