"""A worker process: takes job ids from the queue and runs them, one at a time.

It registers itself in the job table and keeps a heartbeat (which also renews the lease of
the job it is running), warms the engines its operations need before taking work, and on
SIGTERM gives its current job back to the queue and exits. If the job store says its job is
no longer its own (aborted, past the time limit, or given to another worker after a lost
lease), it stops that work by ending itself; its supervisor starts a fresh worker.
If the job store or queue (Redis) cannot be reached, it waits and tries again.
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

from docmill import spread
from docmill.config import Settings
from docmill.errors import ServiceUnavailableError
from docmill.jobs.runner import WorkerStopping, run_job
from docmill.operation import operations
from docmill.procutil import die_with_parent
from docmill.services import Services

log = logging.getLogger("docmill.worker")
BACKOFF_MIN, BACKOFF_MAX = 0.5, 10.0  # waits while the job store or queue is unreachable


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.services = Services.from_settings(settings)
        self.id = f"{socket.gethostname()}-{os.getpid()}"
        self.current_job: str | None = None  # taken from the queue (maybe not claimed)
        self.leased_job: str | None = None  # claimed and not finishing: its lease is ours
        self.stopping = threading.Event()
        self._beat_now = threading.Event()  # wakes the heartbeat early (a job was claimed)
        self.engines: dict[str, dict] = {}

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._try_beat()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        self._warm_engines()
        self._try_beat()
        self.services.queue.listen()
        log.info("worker %s ready", self.id)
        try:
            self._take_jobs()
        except WorkerStopping:
            pass
        finally:
            self.services.queue.close()
            self._stop_engines()
            with contextlib.suppress(Exception):
                self.services.store.remove_worker(self.id)
            log.info("worker %s stopped", self.id)

    def _take_jobs(self) -> None:
        backoff = BACKOFF_MIN
        while not self.stopping.is_set():
            try:
                self._take_jobs_until_unavailable()
            except ServiceUnavailableError as error:
                # Not a crash: a crash would only restart us into the same outage, in a loop.
                log.warning("%s; worker %s retries in %.1f s", error.message, self.id, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_MIN

    def _take_jobs_until_unavailable(self) -> None:
        while not self.stopping.is_set():
            job_id = self.services.queue.take()
            if job_id is None:
                self.services.queue.wait_for_work(self.stopping)
                continue
            self.current_job = job_id
            try:
                run_job(
                    self.services,
                    job_id,
                    self.id,
                    on_claimed=lambda job=job_id: self._set_leased(job),
                    on_finishing=lambda: self._set_leased(None),
                )
            finally:
                self.leased_job = None
                self.current_job = None

    def _set_leased(self, job_id: str | None) -> None:
        self.leased_job = job_id
        if job_id is not None:
            self._beat_now.set()  # so /health shows at once which worker runs the job

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        if self.current_job is not None:
            raise WorkerStopping()

    # -- heartbeat -----------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = max(0.5, min(5.0, self.services.settings.lease_seconds / 3))
        while not self.stopping.is_set():
            self._beat_now.wait(interval)
            self._beat_now.clear()
            if not self.stopping.is_set():
                self._try_beat()

    def _try_beat(self) -> None:
        try:
            self._beat()
        except ServiceUnavailableError as error:
            log.warning("heartbeat of worker %s failed: %s", self.id, error.message)
        except Exception:  # a busy database must not kill the beat
            log.debug("heartbeat of worker %s failed", self.id, exc_info=True)

    def _beat(self) -> None:
        store, settings = self.services.store, self.services.settings
        leased = self.leased_job
        if leased is not None and not store.renew_lease(leased, self.id, settings.lease_seconds):
            self._stop_lost_job(leased)
        store.worker_heartbeat(
            self.id,
            os.getpid(),
            socket.gethostname(),
            {"job": self.current_job, "engines": self.engine_status()},
        )

    def _stop_lost_job(self, job_id: str) -> None:
        """The store no longer gives us this job: stop working on it by ending the process."""
        if self.leased_job != job_id:
            return  # it finished meanwhile: the renewal only lost a race with the finish
        log.warning(
            "job %s is no longer this worker's (aborted, past its time limit, or "
            "taken over after a lost lease); worker %s stops to drop it",
            job_id,
            self.id,
        )
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)

    # -- engines -------------------------------------------------------------------------
    def _needed_engines(self) -> set[str]:
        return {engine for op in operations().values() for engine in op.engines}

    def _warm_engines(self) -> None:
        # Page helpers start in the background: the worker can take jobs meanwhile.
        threading.Thread(target=_warm_page_helpers, name="warm-page-helpers", daemon=True).start()
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
        with contextlib.suppress(Exception):
            spread.stop()
        if "libreoffice" in self._needed_engines():
            from docmill.engines import libreoffice

            with contextlib.suppress(Exception):
                libreoffice.stop_pool()


def worker_main(settings: Settings) -> None:
    """Entry point of a worker process started by the supervisor."""
    die_with_parent(signal.SIGTERM)
    if settings.worker_nice > 0:  # children (LibreOffice, page helpers) inherit it
        os.nice(settings.worker_nice)
    # Engines and ops read their settings from the environment: hand them the flags too.
    os.environ.update(settings.to_env())
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    Worker(settings).run()
    time.sleep(0)  # let logging flush before the process ends


def _warm_page_helpers() -> None:
    try:
        spread.warm()
    except Exception:
        log.exception("page helpers did not start; long documents will start them")
