"""Background upkeep on an API node: expired leases, expired files, old job records."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time

from docmill.services import Services

log = logging.getLogger("docmill.maintenance")
JOB_RECORD_DAYS = 7
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

    def start(self) -> None:
        self.requeue_orphans()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def requeue_orphans(self) -> None:
        """After a restart, make sure every queued job has a queue message.

        A duplicate message is harmless: only one worker can claim a queued job.
        """
        queued = self.services.store.queued_ids()
        if queued and self.services.queue.depth() < len(queued):
            for job_id in queued:
                self.services.queue.enqueue(job_id)
            log.info("re-enqueued %d queued job(s)", len(queued))

    def _loop(self) -> None:
        interval = max(0.5, min(5.0, self.services.settings.lease_seconds / 5))
        while not self._stop.wait(interval):
            try:
                self.run_once()
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
            removed = self.services.storage.sweep()
            cutoff = time.time() - JOB_RECORD_DAYS * 86400
            self.services.store.delete_finished_before(cutoff)
            if removed:
                log.info("deleted %d expired file folder(s)", removed)
