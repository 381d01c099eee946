"""Sync requests waiting for their jobs: woken by the workers' ring, else by polling.

The workers ring the `finished` doorbell of the data directory with a job's id when it ends,
so a sync request answers as soon as its job is done and does not poll the job table every
few milliseconds meanwhile. Workers on other machines (Redis) cannot ring: there, and
wherever the doorbell cannot be heard, the request polls as often as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import anyio

from docmill.jobs.doorbell import DoorbellListener, finished_jobs
from docmill.jobs.store import Job
from docmill.services import Services

# Polling when no ring can be expected: often at first (most jobs take milliseconds), then less.
WAIT_MIN, WAIT_MAX, WAIT_GROWTH = 0.001, 0.01, 1.3
# Polling when every worker rings (the SQLite job table: all of them share this data dir):
# only a safety net for a lost ring.
RUNG_WAIT_MIN, RUNG_WAIT_MAX = 0.05, 0.25


class JobWaiters:
    """The sync requests of one API process that wait for their jobs."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._doorbell = finished_jobs(services.settings.data_dir)
        self._listener: DoorbellListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, asyncio.Event] = {}

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[JobWatch]:
        """Watch a job from before it is queued: its ring can come at any moment after."""
        if not self._listening():
            yield JobWatch(self._services, job_id, None)
            return
        rung = self._waiting[job_id] = asyncio.Event()
        try:
            yield JobWatch(self._services, job_id, rung)
        finally:
            self._waiting.pop(job_id, None)

    def _listening(self) -> bool:
        """Listen on the doorbell from this event loop (bound on first use)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.close()
            self._loop = loop
            self._listener = self._doorbell.listen()
            if self._listener is not None:
                loop.add_reader(self._listener.fileno(), self._on_ring)
        return self._listener is not None

    def _on_ring(self) -> None:
        if self._listener is None:
            return
        for job_id in self._listener.drain():
            rung = self._waiting.get(job_id)
            if rung is not None:
                rung.set()

    def close(self) -> None:
        if self._listener is not None:
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(Exception):  # a loop of another thread, or gone
                    self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
        self._listener, self._loop = None, None


class JobWatch:
    """One job a sync request waits for; `rung` is set when its worker rings."""

    def __init__(self, services: Services, job_id: str, rung: asyncio.Event | None) -> None:
        self._services = services
        self._job_id = job_id
        self._rung = rung

    async def result(self, timeout: float) -> Job | None:
        """The job once it has ended; None if it still runs after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        rung, store = self._rung, self._services.store
        # Every worker rings only where they all share this data dir (SQLite).
        every_worker_rings = rung is not None and store.backend == "sqlite"
        delay, most = (RUNG_WAIT_MIN, RUNG_WAIT_MAX) if every_worker_rings else (WAIT_MIN, WAIT_MAX)
        while True:
            if rung is not None:  # watched since before it was queued: no ring is missed
                await _until_rung(rung, max(0.0, min(delay, deadline - time.monotonic())))
            if every_worker_rings:  # a local SQLite read: quicker than a thread's round trip
                job = store.get(self._job_id)
            else:  # the store may be across the network (Redis): off the event loop
                job = await anyio.to_thread.run_sync(store.get, self._job_id)
            if job is not None and job.done:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if rung is None:
                await asyncio.sleep(min(delay, remaining))
            delay = min(delay * WAIT_GROWTH, most)


async def _until_rung(rung: asyncio.Event | None, timeout: float) -> None:
    if rung is None:
        await asyncio.sleep(timeout)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):  # no task of its own, unlike wait_for
            await rung.wait()
    rung.clear()
