"""A worker process: takes job ids from the queue and runs them, one at a time.

It registers itself in the job table and keeps a heartbeat (which also renews the lease of
the job it is running), warms the engines its operations need before taking work, and on
SIGTERM gives its current job back to the queue and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from types import FrameType

from docmill.config import Settings
from docmill.jobs.runner import WorkerStopping, run_job
from docmill.operation import operations
from docmill.procutil import die_with_parent
from docmill.services import Services

log = logging.getLogger("docmill.worker")
POLL_MIN, POLL_MAX = 0.005, 0.1


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.services = Services.from_settings(settings)
        self.id = f"{socket.gethostname()}-{os.getpid()}"
        self.current_job: str | None = None
        self.stopping = threading.Event()
        self.engines: dict[str, dict] = {}

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._beat()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        self._warm_engines()
        self._beat()
        log.info("worker %s ready", self.id)
        try:
            self._take_jobs()
        except WorkerStopping:
            pass
        finally:
            self._stop_engines()
            self.services.store.remove_worker(self.id)
            log.info("worker %s stopped", self.id)

    def _take_jobs(self) -> None:
        delay = POLL_MIN
        while not self.stopping.is_set():
            job_id = self.services.queue.take()
            if job_id is None:
                self.stopping.wait(delay)
                delay = min(delay * 1.5, POLL_MAX)
                continue
            delay = POLL_MIN
            self.current_job = job_id
            try:
                run_job(self.services, job_id, self.id)
            finally:
                self.current_job = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        if self.current_job is not None:
            raise WorkerStopping()

    # -- heartbeat -----------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = max(0.5, min(5.0, self.services.settings.lease_seconds / 3))
        while not self.stopping.wait(interval):
            with contextlib.suppress(Exception):  # a busy database must not kill the beat
                self._beat()

    def _beat(self) -> None:
        store, settings = self.services.store, self.services.settings
        job = self.current_job
        if job is not None:
            store.renew_lease(job, self.id, settings.lease_seconds)
        store.worker_heartbeat(
            self.id, os.getpid(), socket.gethostname(),
            {"job": job, "engines": self.engine_status()},
        )

    # -- engines -------------------------------------------------------------------------
    def _needed_engines(self) -> set[str]:
        return {engine for op in operations().values() for engine in op.engines}

    def _warm_engines(self) -> None:
        if "libreoffice" in self._needed_engines():
            from docmill.engines import libreoffice

            try:
                libreoffice.get_pool().start()
            except Exception:
                log.exception("LibreOffice did not start; office conversions will retry it")

    def engine_status(self) -> dict[str, dict]:
        if "libreoffice" not in self._needed_engines():
            return {}
        from docmill.engines import libreoffice

        return {"libreoffice": libreoffice.pool_status()}

    def _stop_engines(self) -> None:
        if "libreoffice" in self._needed_engines():
            from docmill.engines import libreoffice

            with contextlib.suppress(Exception):
                libreoffice.stop_pool()


def worker_main(settings: Settings) -> None:
    """Entry point of a worker process started by the supervisor."""
    die_with_parent(signal.SIGTERM)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    Worker(settings).run()
    time.sleep(0)  # let logging flush before the process ends
