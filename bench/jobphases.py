"""Where the time of a sync request goes, read from the job table's own timestamps.

Phases: intake (request sent → job created), queued (created → a worker started it),
worker (the job itself: inputs, op, outputs), answer (job finished → response received).
Server and client run on the same machine, so their clocks agree.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import requests

from bench.client import post_json
from docmill.jobs.store import SqliteJobStore

PHASES = ("intake", "queued", "worker", "answer")


class TracedSyncRequest:
    """A sync request that notes when it was sent and answered, and its job id."""

    def __init__(self, session: requests.Session, url: str, body: dict[str, Any]) -> None:
        self.session, self.url, self.body = session, url, {**body, "async": False}
        self.calls: list[tuple[float, float, str]] = []

    def __call__(self) -> dict[str, Any]:
        sent = time.time()
        data = post_json(self.session, self.url, self.body)
        self.calls.append((sent, time.time(), data["jobId"]))
        return data


def request_phases(data_dir: Path, calls: list[tuple[float, float, str]]) -> dict[str, float]:
    """Median milliseconds of each phase over `calls` (sent, answered, job id)."""
    store = SqliteJobStore(data_dir / "jobs.db")
    phases: dict[str, list[float]] = {name: [] for name in PHASES}
    for sent, answered, job_id in calls:
        job = store.get(job_id)
        if job is None or job.started is None or job.finished is None:
            continue
        moments = (sent, job.created, job.started, job.finished, answered)
        for name, start, end in zip(phases, moments, moments[1:], strict=False):
            phases[name].append((end - start) * 1000)
    return {name: statistics.median(values) for name, values in phases.items() if values}


def phases_note(phases: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {value:.1f}" for name, value in phases.items())
    return f"median phases (ms): {parts}"
