"""The job table: the one source of truth for `/job/check`.

A job is `queued` → `working` (with a lease the worker keeps renewing) → `success | failed |
aborted`. The reaper turns a `working` job whose lease ran out back into `queued` once,
then `failed`, so no job stays `working` forever.

`JobStore` is the interface; `SqliteJobStore` (SQLite in WAL mode, shared by the API and
every worker process of one machine) is the embedded one, and `jobs/store_redis.py` holds
the one a cluster shares. Both keep the same atomic rules: only a queued job is claimed,
only the lease holder renews or releases it, a finished job never changes again.
"""

from __future__ import annotations

import abc
import bisect
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docmill.config import Settings

STATUSES = ("queued", "working", "success", "failed", "aborted")
TERMINAL = ("success", "failed", "aborted")
MAX_ATTEMPTS = 2  # one retry after a worker died mid-job
JOB_RECORD_SECONDS = 7 * 86400  # finished job records are kept this long
# Upper bounds (seconds) of the job-duration histogram behind /metrics; the last is +Inf.
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

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
CREATE TABLE IF NOT EXISTS job_durations (
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 0,
    total REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (op, status, bucket)
);
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


@dataclass
class DurationStats:
    """How long the finished jobs of one (operation, status) took, as histogram counts."""

    bucket_counts: list[int]  # per bucket of DURATION_BUCKETS, then +Inf; not cumulative
    total_seconds: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.bucket_counts)


def duration_bucket(seconds: float) -> int:
    """Index of the histogram bucket a duration falls in (len(DURATION_BUCKETS) = +Inf)."""
    return bisect.bisect_left(DURATION_BUCKETS, seconds)


class JobStore(abc.ABC):
    """What the API, the workers and the maintenance loop need from the job table."""

    backend: str

    # -- jobs ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create(self, job_id: str, op: str, params: dict[str, Any], context: dict) -> Job: ...

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def claim(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        """Mark a queued job as running on `worker`; None if it is not queued any more."""

    @abc.abstractmethod
    def renew_lease(self, job_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend the lease; False if the job is no longer running on `worker`."""

    @abc.abstractmethod
    def release(self, job_id: str, worker: str) -> None:
        """Give a job back to the queue (its worker is stopping before it finished)."""

    @abc.abstractmethod
    def succeed(self, job_id: str, result: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def fail(self, job_id: str, error_status: int, message: str) -> None: ...

    @abc.abstractmethod
    def forget_secrets(self, job_id: str) -> None:
        """Drop the passwords from a finished job's parameters (no retry needs them now)."""

    @abc.abstractmethod
    def abort(self, job_id: str) -> bool: ...

    @abc.abstractmethod
    def requeue_expired(self, now: float | None = None) -> tuple[list[str], list[str]]:
        """Jobs whose worker went silent: requeue those with a try left, fail the rest.

        Returns (requeued ids, failed ids); the caller puts the requeued ones back on the queue.
        """

    @abc.abstractmethod
    def fail_overdue(self, max_runtime: float, now: float | None = None) -> list[tuple[str, str]]:
        """Fail jobs running longer than `max_runtime`; returns (job id, worker id) pairs."""

    @abc.abstractmethod
    def queued_ids(self) -> list[str]: ...

    @abc.abstractmethod
    def count_by_status(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def delete_finished_before(self, cutoff: float) -> int: ...

    @abc.abstractmethod
    def duration_stats(self) -> dict[tuple[str, str], DurationStats]:
        """Run times of every job a worker finished, by (operation, status), since the start."""

    # -- workers -------------------------------------------------------------------------
    @abc.abstractmethod
    def worker_heartbeat(self, worker: str, pid: int, host: str, state: dict) -> None: ...

    @abc.abstractmethod
    def remove_worker(self, worker: str) -> None: ...

    @abc.abstractmethod
    def live_workers(self, max_age: float) -> list[dict[str, Any]]:
        """Workers that sent a heartbeat in the last `max_age` seconds; forget older ones."""

    # -- health --------------------------------------------------------------------------
    @abc.abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached."""


def open_job_store(settings: Settings) -> JobStore:
    """The job store the settings ask for: Redis if `queue` is a Redis URL, else SQLite."""
    if settings.queue:
        from docmill.jobs.queue import check_queue_url
        from docmill.jobs.store_redis import RedisJobStore

        check_queue_url(settings.queue)
        return RedisJobStore(settings.queue)
    return SqliteJobStore(settings.data_dir / "jobs.db")


class SqliteJobStore(JobStore):
    backend = "sqlite"

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

    def renew_lease(self, job_id: str, worker: str, lease_seconds: float) -> bool:
        cursor = self._connect().execute(
            "UPDATE jobs SET lease_until=? WHERE id=? AND worker=? AND status='working'",
            (time.time() + lease_seconds, job_id, worker),
        )
        return cursor.rowcount == 1

    def release(self, job_id: str, worker: str) -> None:
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

    def forget_secrets(self, job_id: str) -> None:
        self._connect().execute(
            "UPDATE jobs SET params=json_remove(params, '$.password', '$.httppassword') "
            "WHERE id=? AND status IN ('success','failed','aborted')",
            (job_id,),
        )

    def _finish(
        self, job_id: str, status: str, message: str, error_status: int, result: dict | None
    ) -> None:
        db = self._connect()
        now = time.time()
        # One transaction: the status change and the duration histogram move together.
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                "UPDATE jobs SET status=?, message=?, error_status=?, result=?, finished=?,"
                " lease_until=NULL WHERE id=? AND status NOT IN ('success','failed','aborted')",
                (status, message, error_status, json.dumps(result) if result else None,
                 now, job_id),
            )
            if cursor.rowcount == 1:
                self._record_duration(db, job_id, status, now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _record_duration(
        self, db: sqlite3.Connection, job_id: str, status: str, finished: float
    ) -> None:
        row = db.execute("SELECT op, started FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None or row["started"] is None:
            return
        seconds = max(0.0, finished - row["started"])
        db.execute(
            "INSERT INTO job_durations (op, status, bucket, count, total) VALUES (?,?,?,1,?)"
            " ON CONFLICT(op, status, bucket) DO UPDATE SET count=count+1,"
            " total=total+excluded.total",
            (row["op"], status, duration_bucket(seconds), seconds),
        )

    def duration_stats(self) -> dict[tuple[str, str], DurationStats]:
        stats: dict[tuple[str, str], DurationStats] = {}
        for row in self._connect().execute("SELECT * FROM job_durations").fetchall():
            entry = stats.setdefault(
                (row["op"], row["status"]), DurationStats([0] * (len(DURATION_BUCKETS) + 1))
            )
            entry.bucket_counts[row["bucket"]] += row["count"]
            entry.total_seconds += row["total"]
        return stats

    def requeue_expired(self, now: float | None = None) -> tuple[list[str], list[str]]:
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
        db = self._connect()
        cutoff = time.time() - max_age
        db.execute("DELETE FROM workers WHERE heartbeat < ?", (cutoff - 3600,))
        rows = db.execute("SELECT * FROM workers WHERE heartbeat >= ?", (cutoff,)).fetchall()
        return [
            {"id": r["id"], "pid": r["pid"], "host": r["host"], "heartbeat": r["heartbeat"],
             **json.loads(r["state"])}
            for r in rows
        ]

    def ping(self) -> None:
        self._connect().execute("SELECT 1").fetchone()


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
