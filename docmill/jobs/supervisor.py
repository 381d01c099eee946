"""Keeps N worker processes alive: starts them, replaces any that die, stops them all.

Workers are started with the `spawn` method (a fresh interpreter: no threads or open
databases inherited from the API process) and die with the supervisor even on kill -9.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import socket
import threading
from multiprocessing.process import BaseProcess

from docmill.config import Settings
from docmill.jobs.store import open_job_store
from docmill.jobs.worker import worker_main

log = logging.getLogger("docmill.supervisor")
CHECK_INTERVAL = 1.0


class WorkerSupervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.processes: list[BaseProcess] = []
        self.restarts = 0
        self._stopping = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._monitor: threading.Thread | None = None
        self._store = open_job_store(settings)

    def start(self) -> None:
        self.processes = [self._spawn(index) for index in range(self.count)]
        self._monitor = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._monitor.start()

    def _spawn(self, index: int) -> BaseProcess:
        process = self._context.Process(
            target=worker_main, args=(self.settings,), name=f"docmill-worker-{index + 1}"
        )
        process.start()
        return process

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_INTERVAL):
            for index, process in enumerate(self.processes):
                if not process.is_alive() and not self._stopping.is_set():
                    log.warning("worker %s (pid %s) died with exit code %s; replacing it",
                                process.name, process.pid, process.exitcode)
                    self._forget(process)
                    self.processes[index] = self._spawn(index)
                    self.restarts += 1

    def _forget(self, process: BaseProcess) -> None:
        """Drop a dead worker's row at once, so /health does not count it for a lease period."""
        with contextlib.suppress(Exception):  # an unreachable store must not stop the watch
            self._store.remove_worker(f"{socket.gethostname()}-{process.pid}")

    def alive(self) -> int:
        return sum(process.is_alive() for process in self.processes)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every worker (each gives its running job back), then SIGKILL stragglers."""
        self._stopping.set()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(grace)
            if process.is_alive():
                log.warning("worker %s did not stop in %.0f s; killing it", process.name, grace)
                process.kill()
                process.join(5)

    def wait(self) -> None:
        """Block until stop() is called (for `docmill worker`)."""
        while not self._stopping.wait(0.5):
            pass
