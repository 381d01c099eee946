"""`docmill serve` and `docmill worker`: start, supervise and stop the processes."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from docmill.api.app import create_app
from docmill.config import Settings
from docmill.jobs.maintenance import Maintenance
from docmill.jobs.supervisor import WorkerSupervisor
from docmill.services import Services

log = logging.getLogger("docmill.server")


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its shutdown, killing us before our own cleanup runs;
    this one just returns, so the workers and engines are stopped in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )


def serve(settings: Settings, run_workers: bool = True) -> None:
    """API + maintenance + (unless told not to) the worker processes, until SIGINT/SIGTERM."""
    configure_logging(settings)
    services = Services.from_settings(settings)
    supervisor = WorkerSupervisor(settings, settings.workers) if run_workers else None
    app = create_app(services, expected_workers=settings.workers if supervisor else 0)
    maintenance = Maintenance(services)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
        access_log=False, proxy_headers=True, timeout_graceful_shutdown=10,
    )
    log.info("docmill on http://%s:%d, data in %s, %d worker(s)", settings.host, settings.port,
             settings.data_dir, settings.workers if supervisor else 0)
    try:
        maintenance.start()
        if supervisor:
            supervisor.start()
        _Server(config).run()
    finally:
        if supervisor:
            supervisor.stop()
        maintenance.stop()
        log.info("docmill stopped")


def run_workers_only(settings: Settings, concurrency: int) -> None:
    """`docmill worker`: worker processes for a shared queue, until SIGINT/SIGTERM."""
    configure_logging(settings)
    Services.from_settings(settings)  # create the data directory and databases up front
    supervisor = WorkerSupervisor(settings, concurrency)
    supervisor.start()

    def stop(signum: int, frame: object) -> None:
        supervisor.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervisor.wait()
