"""Batches and sweeps: many parts × many settings through predict's one dispatch, on Dask.

A batch is the cross product of parts (command line or a manifest CSV) and sweep axes
(a TOML file). Every job goes through the same :func:`predict_part` the ``predict``
command uses, so a batch row equals a single prediction. Jobs run as
``dask.distributed`` tasks (a ``LocalCluster`` or an existing scheduler): no scheduler,
queue or pool of our own.

Work shared between jobs is computed once, as its own task: each part is loaded once,
and for laser sintering each part is voxelised once per *layer grid* (xy pitch, z
sampling, supports) into a :class:`~slicer_energy.sintering.powderbed.PartLayers` that all jobs
on that grid (copies, fill, materials, machines with the same layer thickness, MLS
variants) receive. FDM jobs voxelise inside the FDM model (no reuse yet).

Results are Parquet files in the ``--out`` directory, written as jobs finish (each file
atomically: written aside, then renamed), so a crash loses at most the unflushed rows;
a rerun with the same ``--out`` skips every job whose ``job_id`` is already there. A
job that fails (bad mesh, impossible setting) becomes a row with ``error`` set.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..costs import Costs
from ..errors import SettingsError, SlicerEnergyError
from ..predict import predict_part  # the one dispatch (CLI, compare, LCA)
from .results import Progress, ResultWriter, done_job_ids, read_results
from .rows import costs_per_grid, record_rows
from .sweep import (
    DEFAULT_SWEEP,
    FDM_OPTION,
    MODEL_AXES,
    Sweep,
    layer_grid,
    load_sweep,
    parse_sweep,
)

__all__ = [
    "DEFAULT_SWEEP",
    "Job",
    "PartSpec",
    "SignalStop",
    "load_sweep",
    "make_client",
    "parse_sweep",
    "part_spec",
    "plan_jobs",
    "read_manifest",
    "read_results",
    "run_batch",
]

# ---- parts -------------------------------------------------------------------------


@dataclass(frozen=True)
class PartSpec:
    """A part to predict: a file or a sample name; ``error`` set when it cannot be used."""

    name: str
    source: str  # path as given, or sample name
    units: str = "mm"
    where: str = ""  # "manifest.csv row 3" or "argument 2"
    digest: str = ""  # content hash (resume identity)
    error: str | None = None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def part_spec(source: str, units: str = "mm", name: str = "", where: str = "") -> PartSpec:
    """Check one part reference; a missing file gives a spec with ``error`` (not an exception)."""
    from ..samples import SAMPLES

    p = Path(source)
    label = name or (p.stem if p.suffix else source)
    if p.is_file():
        return PartSpec(label, str(p.resolve()), units, where, _digest(p))
    if source in SAMPLES:
        return PartSpec(label, source, "mm", where, f"sample:{source}")
    msg = f"{where + ': ' if where else ''}{source}: no such file"
    if not p.suffix:
        msg += f", and not a sample part ({', '.join(SAMPLES)})"
    return PartSpec(label, source, units, where, f"missing:{source}", error=msg)


MANIFEST_COLUMNS = ("path", "name", "units")


def read_manifest(path: str | os.PathLike) -> list[PartSpec]:
    """Parts from a CSV with a ``path`` column (``name``, ``units`` optional).

    Relative paths are relative to the manifest's folder. Rows naming a missing file
    are kept as error parts (their jobs become error rows), so the rest still runs.
    """
    mpath = Path(path)
    try:
        text = mpath.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{mpath}: manifest file not found") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{mpath}: not a UTF-8 text CSV (byte {exc.start}: {exc.reason})"
        ) from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        if "path" not in cols:
            raise SettingsError(f"{mpath} line 1: needs a 'path' column, header is {cols}")
        unknown = [c for c in cols if c not in MANIFEST_COLUMNS]
        if unknown:
            raise SettingsError(
                f"{mpath} line 1: unknown column(s) {unknown}; known: {list(MANIFEST_COLUMNS)}"
            )
        parts = []
        for i, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            where = f"{mpath} line {i}"
            src = row.get("path", "")
            if not src:
                parts.append(PartSpec("", "", where=where, error=f"{where}: empty 'path'"))
                continue
            full = src if Path(src).is_absolute() else str(mpath.parent / src)
            if not Path(full).exists() and not Path(src).suffix:
                full = src  # a sample name
            parts.append(part_spec(full, row.get("units") or "mm", row.get("name", ""), where))
    if not parts:
        raise SettingsError(f"{mpath}: no rows")
    return parts


# ---- jobs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    part_index: int
    process: str
    settings: tuple[tuple[str, Any], ...]
    job_id: str
    grid_key: tuple | None  # shared layer grid, None: the model voxelises itself

    def setting(self, name: str, default: Any = None) -> Any:
        return dict(self.settings).get(name, default)


def plan_jobs(parts: Sequence[PartSpec], sweep: Sweep) -> list[Job]:
    """Parts × settings, each with a stable id (content hash of part + settings).

    A part listed twice (same file, units and name) gives the same jobs once: they
    would give the same rows. Unusable parts keep one set of error rows per listing.
    """
    combos = sweep.settings()
    grid_cache: dict[tuple, tuple | None] = {}
    jobs, seen = [], set()
    for i, part in enumerate(parts):
        where = part.where if part.error else ""
        for proc, st in combos:
            key = (proc, st.get("machine"))
            if key not in grid_cache:
                grid_cache[key] = layer_grid(*key)
            ident = json.dumps(
                [part.digest, part.source, part.units, part.name, where, proc, sorted(st.items())],
                default=str,
            )
            jid = hashlib.sha1(ident.encode()).hexdigest()[:20]
            if jid not in seen:
                seen.add(jid)
                jobs.append(Job(i, proc, tuple(sorted(st.items())), jid, grid_cache[key]))
    return jobs


# ---- tasks (run on the workers; they never raise) ------------------------------------


@dataclass
class Failed:
    """A task's failure, carried to the dependent jobs as their error message."""

    message: str


def _message(exc: BaseException) -> str:
    """A job's error as one line: the user's error as worded, a bug with where it was."""
    if isinstance(exc, SlicerEnergyError):
        return " ".join(str(exc).split())
    last = traceback.extract_tb(exc.__traceback__)[-1:]  # a bug: say where
    at = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return " ".join(f"{type(exc).__name__}: {exc}{at}".split())


def load_task(part: PartSpec) -> Any:
    """Load and check a part once (a task whose result many jobs use)."""
    from ..samples import resolve_part

    try:
        return resolve_part(part.source, part.units)
    except Exception as exc:  # a bad mesh is a row, not a stopped batch
        return Failed(f"{part.where + ': ' if part.where else ''}{_message(exc)}")


def layers_task(loaded: Any, grid: tuple) -> Any:
    """Voxelise once per (part, layer grid): the profile every job on that grid reuses."""
    from ..sintering.powderbed import part_layers

    if isinstance(loaded, Failed):
        return loaded
    pitch_xy, dz, supports = grid
    try:
        name = getattr(loaded, "name", "part")  # what predict_part passes the models
        return part_layers(loaded, pitch_xy, dz, name=name, with_supports=supports)
    except Exception as exc:
        return Failed(_message(exc))


def job_task(
    job: Job, part: PartSpec, loaded: Any, layers: Any, variants: Sequence[Costs]
) -> list[dict[str, Any]]:
    """Run one job through predict's dispatch; always returns its rows (error or not): one
    per electricity mix in ``variants``."""
    t0 = time.perf_counter()
    base = _base_row(job, part)
    upstream = layers if isinstance(layers, Failed) else loaded
    if isinstance(upstream, Failed):
        return [{**base, "error": upstream.message}]
    st = dict(job.settings)
    copies = st.get("copies", "1")
    fdm_options = {FDM_OPTION[k]: v for k, v in st.items() if k in FDM_OPTION}
    kwargs: dict[str, Any] = {
        "machine": st.get("machine"),
        "material": st.get("material"),
        "copies": 1 if copies == "fill" else int(copies),
        "fill_build": copies == "fill",
        "variant": st.get("variant", "nominal"),
    }
    if layers is not None:
        kwargs["layers"] = layers
    kwargs.update(fdm_options)
    try:
        est = predict_part(loaded, job.process, **kwargs)
    except Exception as exc:
        return [{**base, "error": _message(exc), "compute_s": time.perf_counter() - t0}]
    vol = getattr(layers, "volume_mm3", None)
    if vol is None:
        vol = getattr(loaded, "volume_mm3", None)
    base.update(volume_mm3=vol, compute_s=time.perf_counter() - t0)
    return record_rows(est, base, variants, part.source)


def _base_row(job: Job, part: PartSpec) -> dict[str, Any]:
    st = dict(job.settings)
    row: dict[str, Any] = {
        "job_id": job.job_id,
        "part": part.name,
        "part_source": part.source,
        "part_where": part.where,
        "part_digest": part.digest,
        "process": job.process,
        "error": None,
    }
    for a in MODEL_AXES:
        if a != "process":
            row[f"set_{a}"] = st.get(a)
    return row


# ---- progress ----------------------------------------------------------------------


# ---- the batch ---------------------------------------------------------------------


@dataclass
class BatchResult:
    total: int
    skipped: int
    computed: int
    errors: int
    seconds: float
    out: Path
    layer_grids: int = 0
    loads: int = 0
    messages: list[str] = field(default_factory=list)
    interrupted: bool = False  # stopped before every job ran (its rows so far are kept)

    @property
    def jobs_per_s(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


class SignalStop:
    """Records SIGINT and SIGTERM while entered (main thread only); :func:`run_batch` polls it.

    A handler that raises (Python's default for SIGINT) can fire inside a garbage
    collector or Dask callback, where the ``KeyboardInterrupt`` is printed and dropped
    and the batch runs on; a recorded flag cannot be lost. The handler takes no lock
    (an ``Event.set`` could deadlock on the lock the interrupted code holds).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: str | None = None  # name of the first signal received
        self._saved: dict[int, Any] = {}

    def is_set(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = self.signal or signal.Signals(signum).name

    def __enter__(self) -> SignalStop:
        for s in self.SIGNALS:
            self._saved[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._saved.items():
            signal.signal(s, handler)
        self._saved.clear()


def run_batch(
    parts: Sequence[PartSpec],
    sweep: Sweep,
    out: str | os.PathLike,
    client: Any,
    *,
    reuse_grids: bool = True,
    progress: TextIO | None = sys.stderr,
    flush_rows: int = 200,
    flush_s: float = 10.0,
    stop: SignalStop | threading.Event | None = None,
    costs: Costs | None = None,
) -> BatchResult:
    """Run every job not yet in ``out`` on the Dask ``client``; rows are written as they finish.

    ``reuse_grids=False`` voxelises inside every job (what a naive loop over
    ``predict`` does); the benchmark uses it to measure what reuse saves. Once ``stop``
    is set (a signal, or an event another thread sets), the jobs not yet finished are
    cancelled, the finished ones written, and the result says ``interrupted``: a rerun
    resumes. ``costs``: prices and grid of every row (the sweep's ``grid`` axis, when it
    has one, replaces the grid)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SettingsError(f"{out}: exists and is not a results directory")
    stop = stop or threading.Event()
    jobs = plan_jobs(parts, sweep)
    done, warnings = done_job_ids(out)
    for w in warnings:
        print(f"slicer-energy: warning: {w}", file=sys.stderr)
    todo = [j for j in jobs if j.job_id not in done]
    variants = costs_per_grid(costs or Costs(), sweep.grids)
    batch = _Run(parts, out, variants, flush_rows, flush_s)
    batch.bar = Progress(len(todo), progress, skipped=len(jobs) - len(todo))
    batch.res = BatchResult(len(jobs), len(jobs) - len(todo), 0, 0, 0.0, out)
    t0 = time.perf_counter()
    try:
        futures = batch.submit(todo, client, reuse_grids, stop)
        batch.drain(futures, client, stop)
        if stop.is_set():
            batch.res.interrupted = batch.res.computed < len(todo)
    finally:
        batch.writer.flush()
        batch.res.seconds = time.perf_counter() - t0
        batch.bar.update(0, final=True)
    return batch.res


class _Run:
    """One ``run_batch`` call: what it submitted, and the rows, counts and progress of what
    came back."""

    bar: Progress
    res: BatchResult

    def __init__(
        self,
        parts: Sequence[PartSpec],
        out: Path,
        variants: list[Costs],
        flush_rows: int,
        flush_s: float,
    ) -> None:
        self.parts = parts
        self.variants = variants
        self.writer = ResultWriter(out, flush_rows, flush_s)
        self.by_key: dict[Any, Job] = {}
        self.run_id = uuid.uuid4().hex[:8]

    def submit(
        self, todo: list[Job], client: Any, reuse_grids: bool, stop: threading.Event | SignalStop
    ) -> list[Any]:
        """Submit every job in ``todo``; each part is loaded (and each layer grid made) once.

        Parts that cannot even be found get their error row here, without touching Dask."""
        futures = []
        loads: dict[int, Any] = {}
        grids: dict[tuple[int, tuple], Any] = {}
        for j in todo:
            if stop.is_set():
                break
            part = self.parts[j.part_index]
            if part.error:
                self._rows([{**_base_row(j, part), "error": part.error}])
                continue
            if j.part_index not in loads:
                loads[j.part_index] = client.submit(
                    load_task, part, key=f"load-{self.run_id}-{j.part_index}", pure=False
                )
            loaded, layers = loads[j.part_index], None
            if reuse_grids and j.grid_key is not None:
                gk = (j.part_index, j.grid_key)
                if gk not in grids:
                    key = f"layers-{self.run_id}-{len(grids)}"
                    grids[gk] = client.submit(layers_task, loaded, j.grid_key, key=key, pure=False)
                layers = grids[gk]
                loaded = None  # the job needs only the small profile, not the mesh
            fut = client.submit(
                job_task,
                j,
                part,
                loaded,
                layers,
                self.variants,
                key=f"job-{self.run_id}-{j.job_id}",
            )
            futures.append(fut)
            self.by_key[fut.key] = j
        self.res.loads, self.res.layer_grids = len(loads), len(grids)
        # Our references end here: Dask frees a mesh or grid once its last job has run.
        return futures

    def drain(self, futures: list[Any], client: Any, stop: threading.Event | SignalStop) -> None:
        """Write each job's rows as it finishes; once ``stop`` is set, keep what finished
        meanwhile and cancel the rest (queued and running, also on a remote cluster)."""
        from distributed import as_completed

        pending = as_completed(futures)
        while pending.count() and not stop.is_set():
            if pending.is_empty():
                time.sleep(0.1)  # as_completed itself polls at this rate
                continue
            self.collect(next(pending))
        if stop.is_set():
            for fut in pending.next_batch(block=False):
                self.collect(fut)
            client.cancel(futures)

    def collect(self, fut: Any) -> None:
        try:
            rows = fut.result()
        except Exception as exc:  # the worker died (crash, out of memory): still a row
            j = self.by_key[fut.key]
            msg = f"worker lost while running this job ({type(exc).__name__}: {exc})"
            rows = [{**_base_row(j, self.parts[j.part_index]), "error": msg}]
        fut.release()
        self._rows(rows)

    def _rows(self, rows: list[dict[str, Any]]) -> None:
        """One job's rows: written (one per electricity mix), errors counted and listed."""
        failed = [r for r in rows if r.get("error")]
        self.res.messages.extend(f"{r['part']} [{r['process']}]: {r['error']}" for r in failed)
        self.res.errors += len(failed)
        self.res.computed += 1
        self.writer.add(rows)
        self.bar.update(1, len(failed))


# Run in each local worker process as it starts: a terminal's Ctrl-C reaches the whole
# process group, and the workers must leave stopping to the batch (which cancels and
# closes them) instead of each dying with a KeyboardInterrupt traceback.
_WORKER_IGNORES_SIGINT = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"


def make_client(
    scheduler: str = "local", workers: int | None = None, *, dashboard: bool = False
) -> tuple[Any, Any]:
    """A Dask client: a new LocalCluster of worker processes, or an existing scheduler.

    A LocalCluster listens on loopback only (scheduler, workers, and its HTTP server on
    a free port); the dashboard is served there only with ``dashboard=True``.
    """
    from distributed import Client, LocalCluster

    if scheduler == "local":
        if dashboard and importlib.util.find_spec("bokeh") is None:
            raise SettingsError("--dashboard needs bokeh: pip install 'bokeh>=3.1'")
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # a free port: never clash with another cluster
            scheduler_kwargs={"dashboard": dashboard},
            preload=[_WORKER_IGNORES_SIGINT],
            silence_logs=40,
            # one worker a CPU already: the FDM slab pass must not start a thread per CPU in each
            env={"SLICER_ENERGY_THREADS": "1"},
        )
        return Client(cluster), cluster
    if dashboard:
        raise SettingsError(
            "--dashboard starts the dashboard of a local cluster; with --scheduler use "
            "that scheduler's own dashboard"
        )
    try:
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise SlicerEnergyError(f"cannot reach Dask scheduler {scheduler!r}: {exc}") from None
