"""Batches and sweeps: many parts × many settings through predict's one dispatch, on Dask.

A batch is the cross product of parts (command line or a manifest CSV) and sweep axes
(a TOML file). Every job goes through the same :func:`predict_part` the ``predict``
command uses, so a batch row equals a single prediction. Jobs run as
``dask.distributed`` tasks (a ``LocalCluster`` or an existing scheduler): no scheduler,
queue or pool of our own.

Work shared between jobs is computed once, as its own task: each part is loaded once,
and for laser sintering each part is voxelised once per *layer grid* (xy pitch, z
sampling, supports) into a :class:`~slicer_energy.powderbed.PartLayers` that all jobs
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
import itertools
import json
import math
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .commands.predict import predict_part, record  # the one dispatch (CLI, compare, LCA)
from .errors import SettingsError, SlicerEnergyError

PROCESSES = ("fdm", "sls", "mls")


@dataclass(frozen=True)
class Axis:
    """One sweep axis: the processes it applies to and how a value is checked."""

    processes: tuple[str, ...]
    check: Callable[[Any], Any]  # returns the normalised value or raises ValueError
    help: str


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError("expected a non-empty string")
    return v


def _process(v: Any) -> str:
    if v not in PROCESSES:
        raise ValueError(f"expected one of {', '.join(PROCESSES)}")
    return v


def _copies(v: Any) -> str:
    if v == "fill":
        return "fill"
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError('expected a whole number >= 1 or "fill"')
    return str(v)


def _number(lo: float, hi: float) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ValueError(f"expected a number in {lo}..{hi}")
        return float(v)

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _variant(v: Any) -> str:
    if v not in ("nominal", "low", "high"):
        raise ValueError("expected nominal, low or high")
    return v


AXES: dict[str, Axis] = {
    "process": Axis(PROCESSES, _process, "fdm, sls, mls"),
    "machine": Axis(PROCESSES, _str, "machine profile name (hardware/...) or .toml path"),
    "material": Axis(PROCESSES, _str, "material name (machine default if absent)"),
    "copies": Axis(("sls", "mls"), _copies, 'copies in one build, or "fill" (a full build)'),
    "variant": Axis(("mls",), _variant, "the study's nominal/low/high energy variant"),
    "preset": Axis(("fdm",), _str, "FDM print settings preset"),
    "layer_height": Axis(("fdm",), _number(0.01, 1.0), "FDM layer height, mm"),
    "infill": Axis(("fdm",), _number(0.0, 100.0), "FDM sparse infill, %"),
    "supports": Axis(("fdm",), _bool, "FDM supports on/off"),
    "grid": Axis(PROCESSES, _str, "electricity mix (lca/background/electricity.toml id)"),
}
ALIASES = {"printer": "machine"}
# Axes that change the prediction (``grid`` only converts kWh to CO2e afterwards).
MODEL_AXES = tuple(a for a in AXES if a != "grid")
FDM_OPTION = {
    "preset": "preset",
    "layer_height": "layer_height_mm",
    "infill": "infill_percent",
    "supports": "supports",
}


@dataclass(frozen=True)
class Sweep:
    """Per process, the axes and their values (the job list is their cross product)."""

    by_process: dict[str, dict[str, tuple[Any, ...]]]
    grids: tuple[str, ...] = ()
    path: Path | None = None

    def settings(self) -> list[tuple[str, dict[str, Any]]]:
        """Every (process, settings) combination, in a stable order."""
        out = []
        for proc, axes in self.by_process.items():
            names = list(axes)
            for combo in itertools.product(*(axes[n] for n in names)):
                out.append((proc, dict(zip(names, combo, strict=True))))
        return out


def _line_of(text: str, key: str) -> str:
    """' line N' of the first ``key =`` or ``[key]`` in a TOML text (for messages)."""
    pat = re.compile(rf"^\s*(\[\s*{re.escape(key)}\s*\]|\"?{re.escape(key)}\"?\s*=)", re.M)
    m = pat.search(text)
    return f" line {text.count(chr(10), 0, m.start()) + 1}" if m else ""


def _grid_ids() -> list[str]:
    from .lca.data import load_background

    return load_background().ids("electricity")


def parse_sweep(values: dict[str, Any], where: str = "sweep", text: str = "") -> Sweep:
    """Check a sweep table: top-level axes apply to every process that takes them,
    ``[sls]``/``[mls]``/``[fdm]`` tables set axes for one process only.

    Raises :class:`SettingsError` naming the file, line, axis and value on any unknown
    axis or value (before any work starts: a sweep is cheap to fix, hours are not).
    """

    def bad(key: str, msg: str) -> SettingsError:
        return SettingsError(f"{where}{_line_of(text, key)}: {msg}")

    def values_of(key: str, raw: Any, proc: str | None) -> tuple[Any, ...]:
        name = ALIASES.get(key, key)
        if name not in AXES:
            known = ", ".join(sorted([*AXES, *ALIASES]))
            raise bad(key, f"unknown axis {key!r}; known axes: {known}")
        if proc and proc not in AXES[name].processes:
            raise bad(key, f"[{proc}] takes no axis {key!r} (it applies to {AXES[name].processes})")
        vals = raw if isinstance(raw, list) else [raw]
        if not vals:
            raise bad(key, f"axis {key!r} has no values")
        out = []
        for v in vals:
            try:
                out.append(AXES[name].check(v))
            except ValueError as exc:
                raise bad(key, f"axis {key!r}: value {v!r} is not valid ({exc})") from None
        if len(set(out)) != len(out):
            raise bad(key, f"axis {key!r} repeats a value: {vals}")
        return tuple(out)

    top: dict[str, tuple[Any, ...]] = {}
    per: dict[str, dict[str, tuple[Any, ...]]] = {}
    for key, raw in values.items():
        if key in PROCESSES and isinstance(raw, dict):
            per[key] = {ALIASES.get(k, k): values_of(k, v, key) for k, v in raw.items()}
        else:
            top[ALIASES.get(key, key)] = values_of(key, raw, None)
    grids = top.pop("grid", ())
    for tbl in per.values():
        if "grid" in tbl:
            raise bad("grid", "set the 'grid' axis at the top level (it applies to all jobs)")
    if grids:
        known = _grid_ids()
        for g in grids:
            if g not in known:
                raise bad("grid", f"axis 'grid': unknown electricity mix {g!r}; known: {known}")
    procs = top.pop("process", None) or tuple(per) or ("sls",)
    for p in per:
        if p not in procs:
            raise bad(p, f"table [{p}] but process {p!r} is not in the 'process' axis {procs}")
    by_process: dict[str, dict[str, tuple[Any, ...]]] = {}
    for p in procs:
        axes = {k: v for k, v in top.items() if p in AXES[k].processes}
        axes.update(per.get(p, {}))
        by_process[p] = axes
    _check_profiles(by_process, where, text)
    return Sweep(by_process=by_process, grids=tuple(grids))


def _check_profiles(by_process: dict[str, dict[str, tuple]], where: str, text: str) -> None:
    """Machines and materials must exist for their process (named in the error)."""
    for proc, axes in by_process.items():
        if proc == "fdm":
            continue  # checked by the FDM model itself; failures become error rows
        for machine in axes.get("machine", (None,)):
            try:
                mach = layer_grid_machine(proc, machine)
            except SlicerEnergyError as exc:
                raise SettingsError(
                    f"{where}{_line_of(text, 'machine')}: {proc} machine {machine!r}: {exc}"
                ) from None
            for material in axes.get("material", ()):
                try:
                    mach.material(material)
                except SlicerEnergyError as exc:
                    raise SettingsError(
                        f"{where}{_line_of(text, 'material')}: axis 'material': {exc}"
                    ) from None


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep TOML file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        values = tomllib.loads(text)
    except FileNotFoundError:
        raise SettingsError(f"{p}: sweep file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{p}: not valid TOML ({exc})") from None
    sw = parse_sweep(values, where=str(p), text=text)
    return Sweep(by_process=sw.by_process, grids=sw.grids, path=p)


DEFAULT_SWEEP = Sweep(by_process={"sls": {}})


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
    from .samples import SAMPLES

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
        fh = open(mpath, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{mpath}: manifest file not found") from None
    with fh:
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
            where = f"{mpath} row {i}"
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


def layer_grid_machine(process: str, machine: str | None) -> Any:
    """The machine profile a job of ``process`` runs on (its layer thickness sets the grid)."""
    from .commands.predict import DEFAULT_MACHINE

    if process == "sls":
        from .sls import load_sls_machine

        return load_sls_machine(machine or DEFAULT_MACHINE["sls"])
    if process == "mls":
        from .mls import load_mls_machine

        return load_mls_machine(machine or DEFAULT_MACHINE["mls"])
    raise SettingsError(f"no shared layer grid for process {process!r}")


def layer_grid(process: str, machine: str | None) -> tuple | None:
    """(pitch_xy_mm, dz_mm, with_supports) the process model would voxelise at, or None.

    Must match what :func:`predict_sls` / :func:`predict_mls` compute themselves, so that
    a reused grid gives the identical estimate (the batch test checks it).
    """
    if process == "sls":
        from .sls import DEFAULT_PITCH_XY_MM

        return (DEFAULT_PITCH_XY_MM, layer_grid_machine(process, machine).layer_mm, False)
    if process == "mls":
        from .mls import DEFAULT_PITCH_MM

        return (DEFAULT_PITCH_MM, DEFAULT_PITCH_MM, True)
    return None


def plan_jobs(parts: Sequence[PartSpec], sweep: Sweep) -> list[Job]:
    """Parts × settings, each with a stable id (content hash of part + settings)."""
    combos = sweep.settings()
    grid_cache: dict[tuple, tuple | None] = {}
    jobs = []
    for i, part in enumerate(parts):
        for proc, st in combos:
            key = (proc, st.get("machine"))
            if key not in grid_cache:
                grid_cache[key] = layer_grid(*key)
            ident = json.dumps(
                [part.digest, part.source, part.units, part.name, proc, sorted(st.items())],
                default=str,
            )
            jid = hashlib.sha1(ident.encode()).hexdigest()[:20]
            jobs.append(Job(i, proc, tuple(sorted(st.items())), jid, grid_cache[key]))
    return jobs


# ---- tasks (run on the workers; they never raise) ------------------------------------


@dataclass
class Failed:
    """A task's failure, carried to the dependent jobs as their error message."""

    message: str


def _message(exc: BaseException) -> str:
    if isinstance(exc, SlicerEnergyError):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1:]  # a bug: say where
    at = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{at}"


def load_task(part: PartSpec) -> Any:
    """Load and check a part once (a task whose result many jobs use)."""
    from .samples import resolve_part

    try:
        return resolve_part(part.source, part.units)
    except Exception as exc:  # a bad mesh is a row, not a stopped batch
        return Failed(f"{part.where + ': ' if part.where else ''}{_message(exc)}")


def layers_task(loaded: Any, grid: tuple) -> Any:
    """Voxelise once per (part, layer grid): the profile every job on that grid reuses."""
    from .powderbed import part_layers

    if isinstance(loaded, Failed):
        return loaded
    pitch_xy, dz, supports = grid
    try:
        name = getattr(loaded, "name", "part")  # what predict_part passes the models
        return part_layers(loaded, pitch_xy, dz, name=name, with_supports=supports)
    except Exception as exc:
        return Failed(_message(exc))


def job_task(job: Job, part: PartSpec, loaded: Any, layers: Any) -> list[dict[str, Any]]:
    """Run one job through predict's dispatch; always returns its row (error or not)."""
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
    row = {**base, **flatten(est)}
    vol = getattr(layers, "volume_mm3", None)
    if vol is None:
        vol = getattr(loaded, "volume_mm3", None)
    row["volume_mm3"] = vol
    row["compute_s"] = time.perf_counter() - t0
    return [row]


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


_SCALARS = (
    "machine",
    "material",
    "case",
    "time_s",
    "energy_kwh",
    "job_energy_kwh",
    "copies",
    "utilisation",
    "material_g",
    "powder_waste_g",
    "kwh_per_kg",
)


def flatten(est: Any) -> dict[str, Any]:
    """One flat row from an :class:`Estimate`: predict's JSON record, nested parts spread out.

    Phases and components become ``energy_<phase>_kwh``, ``time_<phase>_s``,
    ``component_<name>_kwh`` columns; settings, extra and provenance stay whole as JSON.
    """
    rec = record(est)
    row = {k: rec.get(k) for k in _SCALARS}
    row["copies"] = None if row["copies"] is None else int(row["copies"])
    for k, v in est.time_by_phase_s.items():
        row[f"time_{k}_s"] = float(v)
    for k, v in rec["by_phase"].items():
        row[f"energy_{k}_kwh"] = float(v)
    for k, v in rec["by_component"].items():
        row[f"component_{k}_kwh"] = float(v)
    for k in ("settings", "extra", "provenance"):
        row[f"{k}_json"] = json.dumps(rec[k], default=str, sort_keys=True)
    return row


# ---- results on disk ---------------------------------------------------------------


def read_results(out: str | os.PathLike) -> Any:
    """All rows of a results directory as one DataFrame (files may differ in columns)."""
    import pandas as pd

    d = Path(out)
    if d.is_file():
        return pd.read_parquet(d)
    files = sorted(d.glob("*.parquet")) if d.is_dir() else []
    if not files:
        raise SettingsError(f"{d}: no results (expected a directory of .parquet files)")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True, sort=False)


def done_job_ids(out: Path) -> set[str]:
    """Job ids already written to ``out`` (a rerun skips them)."""
    import pyarrow.parquet as pq

    if not out.is_dir():
        return set()
    ids: set[str] = set()
    for f in sorted(out.glob("*.parquet")):
        ids.update(pq.read_table(f, columns=["job_id"]).column("job_id").to_pylist())
    return ids


class ResultWriter:
    """Appends rows to ``out/`` as Parquet files of at most a few seconds' work each.

    Each file is written under a temporary name and renamed into place, so a kill at
    any moment leaves only complete files; the rows in the buffer are recomputed on
    the next run.
    """

    def __init__(self, out: Path, every_rows: int = 200, every_s: float = 10.0) -> None:
        self.out = out
        self.every_rows = max(1, every_rows)
        self.every_s = every_s
        self.rows: list[dict[str, Any]] = []
        self.written = 0
        self._last = time.monotonic()
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self._seq = 0
        out.mkdir(parents=True, exist_ok=True)

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= self.every_rows or time.monotonic() - self._last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        import pandas as pd

        self._last = time.monotonic()
        if not self.rows:
            return
        df = pd.DataFrame(self.rows)
        name = f"part-{self._run}-{self._seq:05d}.parquet"
        tmp = self.out / f".{name}.tmp"
        df.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.out / name)
        self._seq += 1
        self.written += len(self.rows)
        self.rows = []


# ---- electricity mix ---------------------------------------------------------------


def grid_kg_co2e_per_kwh(grid_ids: Sequence[str]) -> dict[str, float]:
    """GWP100 of one kWh of each electricity mix (LCA background data, GWP100 factors)."""
    from .lca.data import load_background, load_method

    if not grid_ids:
        return {}
    db, method = load_background(), load_method()
    cf = method.factors["gwp100"]
    out = {}
    for g in grid_ids:
        proc = db.get(f"electricity:{g}", "sweep axis 'grid'")
        out[g] = sum(n.value * cf[f].value for f, n in proc.flows.items() if f in cf)
    return out


def expand_grids(rows: list[dict[str, Any]], factors: dict[str, float]) -> list[dict[str, Any]]:
    """One row per electricity mix (the estimate does not depend on it)."""
    if not factors:
        return rows
    out = []
    for r in rows:
        for g, f in factors.items():
            kwh = r.get("energy_kwh")
            out.append(
                {
                    **r,
                    "set_grid": g,
                    "kg_co2e_per_kwh": f,
                    "co2e_kg": None if kwh is None else kwh * f,
                }
            )
    return out


# ---- progress ----------------------------------------------------------------------


class Progress:
    """``done/total jobs, rate, ETA`` on one line (a fresh line every 10 s off a terminal)."""

    def __init__(self, total: int, stream: TextIO | None = sys.stderr, skipped: int = 0) -> None:
        self.total, self.done, self.errors = total, 0, 0
        self.stream = stream
        self.t0 = time.monotonic()
        self._last = -1e9
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        if stream is not None and skipped:
            print(f"resuming: {skipped} job(s) already in the results, skipped", file=stream)

    def update(self, n: int = 1, errors: int = 0, final: bool = False) -> None:
        self.done += n
        self.errors += errors
        now = time.monotonic()
        if self.stream is None or (not final and now - self._last < (0.5 if self.tty else 10)):
            return
        self._last = now
        el = now - self.t0
        rate = self.done / el if el > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "--" if math.isinf(left) else _hms(left)
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * 24)
        line = (
            f"[{bar:<24}] {self.done}/{self.total} jobs  {rate:.2f} jobs/s  "
            f"ETA {eta}  elapsed {_hms(el)}  errors {self.errors}"
        )
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


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

    @property
    def jobs_per_s(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


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
) -> BatchResult:
    """Run every job not yet in ``out`` on the Dask ``client``; rows are written as they finish.

    ``reuse_grids=False`` voxelises inside every job (what a naive loop over
    ``predict`` does); the benchmark uses it to measure what reuse saves.
    """
    from distributed import as_completed

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SettingsError(f"{out}: exists and is not a results directory")
    jobs = plan_jobs(parts, sweep)
    done = done_job_ids(out)
    todo = [j for j in jobs if j.job_id not in done]
    factors = grid_kg_co2e_per_kwh(sweep.grids)
    writer = ResultWriter(out, flush_rows, flush_s)
    bar = Progress(len(todo), progress, skipped=len(jobs) - len(todo))
    res = BatchResult(len(jobs), len(jobs) - len(todo), 0, 0, 0.0, out)
    t0 = time.perf_counter()
    run = uuid.uuid4().hex[:8]

    # Parts that cannot even be found: their rows are written without touching Dask.
    futures = []
    loads: dict[int, Any] = {}
    grids: dict[tuple[int, tuple], Any] = {}
    for j in todo:
        part = parts[j.part_index]
        if part.error:
            rows = [{**_base_row(j, part), "error": part.error}]
            writer.add(expand_grids(rows, factors))
            res.errors += 1
            res.computed += 1
            bar.update(1, 1)
            continue
        if j.part_index not in loads:
            loads[j.part_index] = client.submit(
                load_task, part, key=f"load-{run}-{j.part_index}", pure=False
            )
        loaded = loads[j.part_index]
        layers = None
        if reuse_grids and j.grid_key is not None:
            gk = (j.part_index, j.grid_key)
            if gk not in grids:
                grids[gk] = client.submit(
                    layers_task, loaded, j.grid_key, key=f"layers-{run}-{len(grids)}", pure=False
                )
            layers = grids[gk]
            loaded = None  # the job needs only the small profile, not the mesh
        futures.append(
            client.submit(job_task, j, part, loaded, layers, key=f"job-{run}-{j.job_id}")
        )
    res.loads, res.layer_grids = len(loads), len(grids)
    # Drop our references: Dask frees a mesh or grid once its last job has run.
    loads.clear()
    grids.clear()
    try:
        for fut in as_completed(futures):
            rows = fut.result()
            fut.release()
            errs = sum(1 for r in rows if r.get("error"))
            if errs:
                res.messages.extend(r["error"] for r in rows if r.get("error"))
            res.errors += errs
            res.computed += 1
            writer.add(expand_grids(rows, factors))
            bar.update(1, errs)
    finally:
        writer.flush()
        res.seconds = time.perf_counter() - t0
        bar.update(0, final=True)
    return res


def make_client(scheduler: str = "local", workers: int | None = None) -> tuple[Any, Any]:
    """A Dask client: a new LocalCluster of worker processes, or an existing scheduler."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never clash with another cluster
            silence_logs=40,
        )
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise SlicerEnergyError(f"cannot reach Dask scheduler {scheduler!r}: {exc}") from None
