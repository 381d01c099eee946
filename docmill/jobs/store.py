"""The job table: the one source of truth for `/job/check`.

SQLite in WAL mode, shared by the API and every worker process of one machine. A job is
`queued` → `working` (with a lease the worker keeps renewing) → `success | failed |
aborted`. The reaper turns a `working` job whose lease ran out back into `queued` once,
then `failed`, so no job stays `working` forever.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("success", "failed", "aborted")
MAX_ATTEMPTS = 2  # one retry after a worker died mid-job

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    op TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    error_status INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    result TEXT,
    context TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    state TEXT NOT NULL DEFAULT '{}'
);
"""


@dataclass
class Job:
    id: str
    op: str
    params: dict[str, Any]
    status: str
    message: str = ""
    error_status: int = 0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    worker: str | None = None
    lease_until: float | None = None
    result: dict[str, Any] | None = None
    # Facts fixed at submission: base URL, output names, expiry of result links.
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration_ms(self) -> int:
        if self.started is None:
            return 0
        return int(((self.finished or time.time()) - self.started) * 1000)


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    # -- jobs ----------------------------------------------------------------------------
    def create(self, job_id: str, op: str, params: dict[str, Any], context: dict) -> Job:
        job = Job(job_id, op, params, "queued", created=time.time(), context=context)
        self._connect().execute(
            "INSERT INTO jobs (id, op, params, status, created, context) VALUES (?,?,?,?,?,?)",
            (job.id, op, json.dumps(params), job.status, job.created, json.dumps(context)),
        )
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_from_row(row) if row else None

    def claim(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        """Mark a queued job as running on `worker`; None if it is not queued any more."""
        now = time.time()
        cursor = self._connect().execute(
            "UPDATE jobs SET status='working', worker=?, lease_until=?, attempts=attempts+1,"
            " started=COALESCE(started, ?) WHERE id=? AND status='queued'",
            (worker, now + lease_seconds, now, job_id),
        )
        return self.get(job_id) if cursor.rowcount == 1 else None

    def renew_lease(self, job_id: str, worker: str, lease_seconds: float) -> None:
        self._connect().execute(
            "UPDATE jobs SET lease_until=? WHERE id=? AND worker=? AND status='working'",
            (time.time() + lease_seconds, job_id, worker),
        )

    def release(self, job_id: str, worker: str) -> None:
        """Give a job back to the queue (its worker is stopping before it finished)."""
        self._connect().execute(
            "UPDATE jobs SET status='queued', worker=NULL, lease_until=NULL,"
            " attempts=MAX(attempts-1, 0) WHERE id=? AND worker=? AND status='working'",
            (job_id, worker),
        )

    def succeed(self, job_id: str, result: dict[str, Any]) -> None:
        self._finish(job_id, "success", "", 0, result)

    def fail(self, job_id: str, error_status: int, message: str) -> None:
        self._finish(job_id, "failed", message, error_status, None)

    def abort(self, job_id: str) -> bool:
        cursor = self._connect().execute(
            "UPDATE jobs SET status='aborted', message='Aborted.', finished=? "
            "WHERE id=? AND status IN ('queued', 'working')",
            (time.time(), job_id),
        )
        return cursor.rowcount == 1

    def _finish(
        self, job_id: str, status: str, message: str, error_status: int, result: dict | None
    ) -> None:
        self._connect().execute(
            "UPDATE jobs SET status=?, message=?, error_status=?, result=?, finished=?,"
            " lease_until=NULL WHERE id=? AND status NOT IN ('success','failed','aborted')",
            (status, message, error_status, json.dumps(result) if result else None,
             time.time(), job_id),
        )

    def requeue_expired(self, now: float | None = None) -> tuple[list[str], list[str]]:
        """Jobs whose worker went silent: requeue those with a try left, fail the rest.

        Returns (requeued ids, failed ids); the caller puts the requeued ones back on the queue.
        """
        now = time.time() if now is None else now
        db = self._connect()
        rows = db.execute(
            "SELECT id, attempts FROM jobs WHERE status='working' AND lease_until < ?", (now,)
        ).fetchall()
        requeued, failed = [], []
        for row in rows:
            if row["attempts"] < MAX_ATTEMPTS:
                cursor = db.execute(
                    "UPDATE jobs SET status='queued', worker=NULL, lease_until=NULL "
                    "WHERE id=? AND status='working' AND lease_until < ?",
                    (row["id"], now),
                )
                if cursor.rowcount:
                    requeued.append(row["id"])
            else:
                cursor = db.execute(
                    "UPDATE jobs SET status='failed', error_status=500, finished=?, message=?"
                    " WHERE id=? AND status='working' AND lease_until < ?",
                    (now, "The worker running this job stopped (crashed or was killed) "
                     f"{row['attempts']} times; the job was given up.", row["id"], now),
                )
                if cursor.rowcount:
                    failed.append(row["id"])
        return requeued, failed

    def fail_overdue(self, max_runtime: float, now: float | None = None) -> list[tuple[str, str]]:
        """Fail jobs running longer than `max_runtime`; returns (job id, worker id) pairs."""
        now = time.time() if now is None else now
        db = self._connect()
        rows = db.execute(
            "SELECT id, worker FROM jobs WHERE status='working' AND started < ?",
            (now - max_runtime,),
        ).fetchall()
        overdue = []
        for row in rows:
            cursor = db.execute(
                "UPDATE jobs SET status='failed', error_status=408, finished=?, message=? "
                "WHERE id=? AND status='working'",
                (now, f"The job ran longer than the limit of {max_runtime:.0f} s and was "
                 "stopped.", row["id"]),
            )
            if cursor.rowcount:
                overdue.append((row["id"], row["worker"] or ""))
        return overdue

    def queued_ids(self) -> list[str]:
        rows = self._connect().execute(
            "SELECT id FROM jobs WHERE status='queued' ORDER BY created"
        ).fetchall()
        return [row["id"] for row in rows]

    def count_by_status(self) -> dict[str, int]:
        rows = self._connect().execute(
            "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"
        ).fetchall()
        return {row["status"]: row["n"] for row in rows}

    def delete_finished_before(self, cutoff: float) -> int:
        cursor = self._connect().execute(
            "DELETE FROM jobs WHERE status IN ('success','failed','aborted') AND finished < ?",
            (cutoff,),
        )
        return cursor.rowcount

    # -- workers -------------------------------------------------------------------------
    def worker_heartbeat(self, worker: str, pid: int, host: str, state: dict) -> None:
        now = time.time()
        self._connect().execute(
            "INSERT INTO workers (id, pid, host, started, heartbeat, state) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET heartbeat=excluded.heartbeat, state=excluded.state",
            (worker, pid, host, now, now, json.dumps(state)),
        )

    def remove_worker(self, worker: str) -> None:
        self._connect().execute("DELETE FROM workers WHERE id=?", (worker,))

    def live_workers(self, max_age: float) -> list[dict[str, Any]]:
        """Workers that sent a heartbeat in the last `max_age` seconds; forget older ones."""
        db = self._connect()
        cutoff = time.time() - max_age
        db.execute("DELETE FROM workers WHERE heartbeat < ?", (cutoff - 3600,))
        rows = db.execute("SELECT * FROM workers WHERE heartbeat >= ?", (cutoff,)).fetchall()
        return [
            {"id": r["id"], "pid": r["pid"], "host": r["host"], "heartbeat": r["heartbeat"],
             **json.loads(r["state"])}
            for r in rows
        ]


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        op=row["op"],
        params=json.loads(row["params"]),
        status=row["status"],
        message=row["message"],
        error_status=row["error_status"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        attempts=row["attempts"],
        worker=row["worker"],
        lease_until=row["lease_until"],
        result=json.loads(row["result"]) if row["result"] else None,
        context=json.loads(row["context"]),
    )
