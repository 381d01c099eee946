"""The job queue: Huey as the broker (SQLite in embedded mode, Redis in a cluster).

Huey carries job ids from the API to the workers and keeps them across restarts; the job
table (`store.py`) keeps the state. Workers take messages with `take()` and run them
through `jobs.runner` themselves, so a job's life is always visible in the job table.
An idle worker waits in `wait_for_work()`: a blocking pop on Redis; on SQLite, a doorbell
that every `enqueue()` rings (or, failing that, a short sleep before it polls again).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import redis
from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.storage import SqliteStorage

from docmill.config import ConfigurationError
from docmill.errors import ServiceUnavailableError
from docmill.jobs.doorbell import DoorbellListener, queued_jobs

_TASK_NAME = "docmill.run_job"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# An idle worker on the SQLite queue looks again after this long even if nobody rang.
RING_FALLBACK = 0.1
POLL_WITHOUT_RING = 0.005


def _run_job_message(job_id: str) -> str:  # pragma: no cover - never executed by Huey
    return job_id


class _SqliteStorage(SqliteStorage):
    """Huey's SQLite queue, synced like the job table (WAL + NORMAL): consistent after a
    crash, and no fsync per enqueue and per take (a quarter of a millisecond each). A job
    queued just before a power loss is lost to the queue but not to the job table, from
    which the maintenance loop queues it again."""

    def _create_connection(self) -> sqlite3.Connection:
        connection = super()._create_connection()
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection


def check_queue_url(url: str) -> None:
    if url and not url.startswith(REDIS_SCHEMES):
        raise ConfigurationError(
            f"DOCMILL_QUEUE={url!r} is not a Redis URL: use redis://host:6379/0 (or "
            "rediss://, unix://), or leave it empty for the embedded SQLite queue."
        )


class JobQueue:
    def __init__(self, data_dir: Path, url: str = "") -> None:
        check_queue_url(url)
        self.backend = "redis" if url else "sqlite"
        self._doorbell = None if url else queued_jobs(data_dir)
        self._listener: DoorbellListener | None = None
        self.huey: Huey
        if url:
            from docmill.jobs.store_redis import redis_pool

            # Blocking pop: an idle worker waits on Redis instead of polling it.
            self.huey = RedisHuey(name="docmill", connection_pool=redis_pool(url, decode=False),
                                  results=False, utc=True, blocking=True, read_timeout=1)
        else:
            self.huey = SqliteHuey(
                name="docmill",
                filename=str(data_dir / "queue.db"),
                results=False,
                utc=True,
                storage_class=_SqliteStorage,
            )
        self._task = self.huey.task(name=_TASK_NAME)(_run_job_message)

    def enqueue(self, job_id: str) -> None:
        with _unavailable_on_connection_loss():
            self._task(job_id)
        if self._doorbell is not None:
            self._doorbell.ring()

    def take(self) -> str | None:
        """The next job id, or None when the queue is empty."""
        with _unavailable_on_connection_loss():
            message = self.huey.dequeue()
        if message is None:
            return None
        return str(message.args[0])

    def listen(self) -> None:
        """Hear the SQLite queue's doorbell from now on (a worker calls this once)."""
        if self._doorbell is not None and self._listener is None:
            self._listener = self._doorbell.listen()

    def wait_for_work(self, stopping: threading.Event) -> None:
        """Wait a little for a job to be queued (the caller then tries `take()` again)."""
        if self.backend == "redis":
            return  # take() itself blocks on Redis
        if self._listener is None:
            stopping.wait(POLL_WITHOUT_RING)
        else:
            self._listener.wait(RING_FALLBACK)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def depth(self) -> int:
        with _unavailable_on_connection_loss():
            return self.huey.pending_count()

    def ping(self) -> None:
        """Raise if the broker cannot be reached."""
        self.depth()


@contextlib.contextmanager
def _unavailable_on_connection_loss() -> Iterator[None]:
    """Redis connection errors become ServiceUnavailableError (503 in the API)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise ServiceUnavailableError(
            f"The job queue (Redis) is unreachable: {error}. Retry in a moment."
        ) from error
