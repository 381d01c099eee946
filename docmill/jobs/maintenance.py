"""Background upkeep on an API node: expired leases, expired files, old job records.

In a cluster every API node runs it: each step is safe to run twice at once (the store's
state changes are atomic, deleting a deleted file is a no-op), so no leader is needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time

from docmill.errors import ServiceUnavailableError
from docmill.jobs.store import JOB_RECORD_SECONDS
from docmill.services import Services

log = logging.getLogger("docmill.maintenance")
SWEEP_INTERVAL = 60.0


def _kill_local_worker(worker: str) -> None:
    """Kill a worker process of this machine (the supervisor starts a fresh one)."""
    host, _, pid = worker.rpartition("-")
    if host == socket.gethostname() and pid.isdigit():
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGKILL)


class Maintenance:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._last_sweep = 0.0
        self._deficit_seen = False

    def start(self) -> None:
        try:
            self.requeue_orphans()
        except ServiceUnavailableError as error:  # the loop tries again; the API still starts
            log.warning("%s", error.message)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def requeue_orphans(self, confirmed: bool = True) -> None:
        """Make sure every queued job has a queue message: after a restart, or when a worker
        died between taking a message and claiming its job, or Redis was lost meanwhile.

        A duplicate message is harmless: only one worker can claim a queued job. Still, a
        worker between taking a message and claiming its job makes a deficit of one for an
        instant; unless `confirmed`, a deficit must be seen twice in a row to count.
        """
        queued = self.services.store.queued_ids()
        deficit = bool(queued) and self.services.queue.depth() < len(queued)
        seen_before, self._deficit_seen = self._deficit_seen, deficit
        if deficit and (confirmed or seen_before):
            for job_id in queued:
                self.services.queue.enqueue(job_id)
            log.info("re-enqueued %d queued job(s)", len(queued))

    def _loop(self) -> None:
        interval = max(0.5, min(5.0, self.services.settings.lease_seconds / 5))
        unavailable = False
        while not self._stop.wait(interval):
            try:
                self.run_once()
                if unavailable:
                    log.warning("job store reachable again; maintenance resumed")
                unavailable = False
            except ServiceUnavailableError as error:
                if not unavailable:  # say it once per outage, not every round
                    log.warning("maintenance paused: %s", error.message)
                unavailable = True
            except Exception:  # keep the upkeep going whatever one round hit
                log.exception("maintenance round failed")

    def run_once(self) -> None:
        requeued, failed = self.services.store.requeue_expired()
        for job_id in requeued:
            self.services.queue.enqueue(job_id)
        if requeued or failed:
            log.warning("lost workers: requeued %s, failed %s", requeued, failed)
        for job_id, worker in self.services.store.fail_overdue(self.services.settings.job_timeout):
            log.warning("job %s ran past the time limit; stopping worker %s", job_id, worker)
            _kill_local_worker(worker)
        if time.monotonic() - self._last_sweep >= SWEEP_INTERVAL:
            self._last_sweep = time.monotonic()
            self.requeue_orphans(confirmed=False)
            removed = self.services.storage.sweep()
            self.services.store.delete_finished_before(time.time() - JOB_RECORD_SECONDS)
            if removed:
                log.info("deleted the files of %d expired file id(s)", removed)
