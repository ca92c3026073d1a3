"""A batch's results on disk (a directory of Parquet files) and its progress line.

Each file is written under a temporary name and renamed into place, so a kill at any
moment leaves only complete files; ``job_id`` identifies the job a row belongs to.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from ..errors import CorruptResultsFile, SettingsError


def _read_file(f: Path) -> Any:
    """One results file as an Arrow table, or an error naming it (never pyarrow's traceback).

    The whole file is read, not only ``job_id``: a file counted as done for resume must
    be one the report can read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(f)
    except PermissionError as exc:
        raise SettingsError(f"{f}: cannot read ({exc.strerror})") from None
    except (pa.ArrowException, OSError) as exc:  # bad magic, truncated, corrupt pages
        reason = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(exc))
        raise CorruptResultsFile(f, " ".join(reason.split())) from None
    if "job_id" not in table.column_names:
        raise SettingsError(f"{f}: not a batch results file (no 'job_id' column)")
    return table


def read_results(out: str | os.PathLike) -> Any:
    """All rows of a results directory as one DataFrame (files may differ in columns)."""
    import pandas as pd

    d = Path(out)
    if d.is_file():
        return _read_file(d).to_pandas()
    files = sorted(d.glob("*.parquet")) if d.is_dir() else []
    if not files:
        raise SettingsError(f"{d}: no results (expected a directory of .parquet files)")
    try:
        frames = [_read_file(f).to_pandas() for f in files]
    except CorruptResultsFile as exc:
        raise SettingsError(
            f"{exc}; rerun the batch with the same --out to set it aside and run its jobs again"
        ) from None
    return pd.concat(frames, ignore_index=True, sort=False)


def done_job_ids(out: Path) -> tuple[set[str], list[str]]:
    """Job ids already written to ``out`` (a rerun skips them), and warnings.

    A file that cannot be read (damaged on disk or in a copy; our own writes are atomic)
    is renamed ``*.parquet.corrupt`` (kept for inspection, no longer read as results),
    and its jobs run again.
    """
    if not out.is_dir():
        return set(), []
    ids: set[str] = set()
    warnings = []
    for f in sorted(out.glob("*.parquet")):
        try:
            ids.update(_read_file(f).column("job_id").to_pylist())
        except CorruptResultsFile as exc:
            aside = f.rename(f.with_name(f.name + ".corrupt"))
            warnings.append(f"{exc}; renamed to {aside.name}, its jobs run again")
    return ids, warnings


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
        _remove_orphan_tmp(out)

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


def _remove_orphan_tmp(out: Path) -> None:
    """Delete half-written files of runs that were killed (their rows are recomputed).

    A temporary name carries its writer's pid (``.part-<time>-<pid>-<seq>.parquet.tmp``);
    one whose process is still alive belongs to a concurrent writer and is left alone.
    """
    for f in out.glob(".part-*.parquet.tmp"):
        try:
            pid = int(f.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError):
            continue


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
