"""The job queue: Huey as the broker (SQLite in embedded mode).

Huey carries job ids from the API to the workers and keeps them across restarts; the job
table (`store.py`) keeps the state. Workers take messages with `take()` and run them
through `jobs.runner` themselves, so a job's life is always visible in the job table.
"""

from __future__ import annotations

from pathlib import Path

from huey import SqliteHuey

_TASK_NAME = "docmill.run_job"


def _run_job_message(job_id: str) -> str:  # pragma: no cover - never executed by Huey
    return job_id


class JobQueue:
    def __init__(self, data_dir: Path) -> None:
        self.huey = SqliteHuey(
            name="docmill", filename=str(data_dir / "queue.db"), results=False, utc=True
        )
        self._task = self.huey.task(name=_TASK_NAME)(_run_job_message)

    def enqueue(self, job_id: str) -> None:
        self._task(job_id)

    def take(self) -> str | None:
        """The next job id, or None when the queue is empty."""
        message = self.huey.dequeue()
        if message is None:
            return None
        return str(message.args[0])

    def depth(self) -> int:
        return self.huey.pending_count()
