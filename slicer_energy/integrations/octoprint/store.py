"""The plugin's durable history: one SQLite file in OctoPrint's plugin data folder.

Every meter reading taken during a job is committed as it arrives (WAL journal), so a crash
or power cut mid-job loses nothing already recorded; on the next start :meth:`History.open`
closes such a job as ``interrupted`` with the energy of the readings it has. Estimates of
uploaded files are kept here too, keyed by (origin, path).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...estimate import J_PER_KWH
from ...rig.meters import integrate_energy_j

SCHEMA = """
CREATE TABLE IF NOT EXISTS estimates (
    origin TEXT NOT NULL, path TEXT NOT NULL, settings TEXT NOT NULL, status TEXT NOT NULL,
    record TEXT, error TEXT, updated_unix REAL NOT NULL, PRIMARY KEY (origin, path));
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, path TEXT NOT NULL,
    printer TEXT NOT NULL, started_unix REAL NOT NULL, ended_unix REAL, status TEXT NOT NULL,
    predicted_kwh REAL, predicted_time_s REAL, measured_kwh REAL, readings INTEGER,
    cost REAL, currency TEXT, co2e_g REAL, session_folder TEXT);
CREATE TABLE IF NOT EXISTS readings (
    job_id INTEGER NOT NULL REFERENCES jobs(id), t_unix REAL NOT NULL, power_w REAL NOT NULL);
CREATE INDEX IF NOT EXISTS readings_job ON readings (job_id, t_unix);
"""
JOB_COLUMNS = (
    "id",
    "origin",
    "path",
    "printer",
    "started_unix",
    "ended_unix",
    "status",
    "predicted_kwh",
    "predicted_time_s",
    "measured_kwh",
    "readings",
    "cost",
    "currency",
    "co2e_g",
    "session_folder",
)


def window_energy_j(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Energy over exactly [t0, t1] of the linearly interpolated readings, each end held at
    its nearest reading (the job starts and ends between two polls)."""
    if t.size == 0 or t1 <= t0:
        return 0.0
    grid = np.concatenate(([t0], t[(t > t0) & (t < t1)], [t1]))
    return integrate_energy_j(grid, np.interp(grid, t, p))


class History:
    """Estimates, jobs and their readings. Thread-safe: one connection behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        self._close_interrupted()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ estimates
    def put_estimate(
        self,
        origin: str,
        path: str,
        settings: str,
        status: str,
        record: dict | None = None,
        error: str | None = None,
    ) -> None:
        """Store the estimate (or its state ``queued``/``running``, or its error)."""
        self._exec(
            "INSERT OR REPLACE INTO estimates VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                origin,
                path,
                settings,
                status,
                json.dumps(record) if record else None,
                error,
                time.time(),
            ),
        )

    def estimate(self, origin: str, path: str) -> dict[str, Any] | None:
        rows = self._exec("SELECT * FROM estimates WHERE origin = ? AND path = ?", (origin, path))
        return _estimate_dict(rows[0]) if rows else None

    def estimates(self) -> list[dict[str, Any]]:
        return [_estimate_dict(r) for r in self._exec("SELECT * FROM estimates ORDER BY path")]

    def drop_estimate(self, origin: str, path: str) -> None:
        self._exec("DELETE FROM estimates WHERE origin = ? AND path = ?", (origin, path))

    # ------------------------------------------------------------------ jobs
    def start_job(
        self,
        origin: str,
        path: str,
        printer: str,
        started_unix: float,
        predicted: dict | None,
        session_folder: str | None,
    ) -> int:
        """A new job row (status ``printing``); its id."""
        pred = predicted or {}
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO jobs (origin, path, printer, started_unix, status, predicted_kwh,"
                " predicted_time_s, session_folder) VALUES (?, ?, ?, ?, 'printing', ?, ?, ?)",
                (
                    origin,
                    path,
                    printer,
                    started_unix,
                    pred.get("energy_kwh"),
                    pred.get("time_s"),
                    session_folder,
                ),
            )
            return int(cur.lastrowid)

    def add_reading(self, job_id: int, t_unix: float, power_w: float) -> None:
        """One meter reading of a running job, committed at once."""
        self._exec("INSERT INTO readings VALUES (?, ?, ?)", (job_id, t_unix, power_w))

    def readings(self, job_id: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._exec(
            "SELECT t_unix, power_w FROM readings WHERE job_id = ? ORDER BY t_unix", (job_id,)
        )
        a = np.array(rows, dtype=float).reshape(-1, 2)
        return a[:, 0], a[:, 1]

    def end_job(
        self,
        job_id: int,
        ended_unix: float,
        status: str,
        pricing: Callable[[float], dict] | None = None,
    ) -> dict[str, Any]:
        """Close the job: measured kWh over [start, end] from its readings (None without any)
        and, given ``pricing(kwh) -> {cost, currency, co2e_g}``, what that energy cost."""
        (started,) = self._exec("SELECT started_unix FROM jobs WHERE id = ?", (job_id,))[0]
        t, p = self.readings(job_id)
        kwh = window_energy_j(t, p, started, ended_unix) / J_PER_KWH if t.size else None
        money = pricing(kwh) if pricing and kwh is not None else {}
        self._exec(
            "UPDATE jobs SET ended_unix = ?, status = ?, measured_kwh = ?, readings = ?,"
            " cost = ?, currency = ?, co2e_g = ? WHERE id = ?",
            (
                ended_unix,
                status,
                kwh,
                int(t.size),
                money.get("cost"),
                money.get("currency"),
                money.get("co2e_g"),
                job_id,
            ),
        )
        return self.job(job_id)

    def _close_interrupted(self) -> None:
        """Jobs still ``printing`` when the last run stopped: ended at their last reading."""
        for (job_id,) in self._exec("SELECT id FROM jobs WHERE status = 'printing'"):
            t, _p = self.readings(job_id)
            (started,) = self._exec("SELECT started_unix FROM jobs WHERE id = ?", (job_id,))[0]
            self.end_job(job_id, float(t[-1]) if t.size else started, "interrupted")

    def job(self, job_id: int) -> dict[str, Any]:
        rows = self._exec(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = ?", (job_id,))
        return dict(zip(JOB_COLUMNS, rows[0], strict=True))

    def jobs(self) -> list[dict[str, Any]]:
        rows = self._exec(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY id")
        return [dict(zip(JOB_COLUMNS, r, strict=True)) for r in rows]

    def jobs_csv(self) -> str:
        """Every job, one CSV row each (the API's export)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(JOB_COLUMNS)
        for j in self.jobs():
            w.writerow(["" if j[c] is None else j[c] for c in JOB_COLUMNS])
        return buf.getvalue()


def _estimate_dict(row: tuple) -> dict[str, Any]:
    origin, path, settings, status, record, error, updated = row
    return {
        "origin": origin,
        "path": path,
        "settings": settings,
        "status": status,
        "estimate": json.loads(record) if record else None,
        "error": error,
        "updated_unix": updated,
    }
