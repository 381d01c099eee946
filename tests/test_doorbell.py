"""Wake-ups between processes: the doorbell itself, the embedded queue's, and the one that
ends a sync request's wait as soon as its worker rings."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from docmill.api import waiting
from docmill.api.waiting import JobWaiters
from docmill.config import Settings
from docmill.jobs.doorbell import Doorbell, finished_jobs
from docmill.jobs.queue import JobQueue
from docmill.jobs.runner import run_job
from docmill.services import Services


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return Services.from_settings(Settings(data_dir=tmp_path / "data"))


def test_a_ring_reaches_every_listener(tmp_path: Path) -> None:
    bell = Doorbell(tmp_path / "bell")
    first, second = bell.listen(), bell.listen()
    assert first is not None and second is not None
    bell.ring("job-1")
    assert first.wait(5) == ["job-1"]
    assert second.wait(5) == ["job-1"]
    assert first.drain() == []
    first.close()
    assert not first.path.exists()
    bell.ring("job-2")
    assert second.wait(5) == ["job-2"]
    second.close()


def test_ringing_removes_the_sockets_of_gone_processes(tmp_path: Path) -> None:
    bell = Doorbell(tmp_path / "bell")
    listener = bell.listen()
    assert listener is not None
    stale = tmp_path / "bell" / "1-deadbeef.sock"
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(stale))
    gone.close()  # its file stays, bound to nobody: what a killed process leaves
    bell.ring("job")
    assert not stale.exists()
    assert listener.wait(5) == ["job"]
    listener.close()


def test_nobody_listening_or_no_socket_possible_is_no_error(tmp_path: Path) -> None:
    Doorbell(tmp_path / "never-created").ring("job")
    too_long = Doorbell(tmp_path / ("x" * 120))
    assert too_long.listen() is None
    too_long.ring("job")


def test_an_idle_worker_wakes_when_a_job_is_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("docmill.jobs.queue.RING_FALLBACK", 600.0)  # only a ring ends the wait
    worker_side, api_side = JobQueue(tmp_path), JobQueue(tmp_path)
    worker_side.listen()
    assert worker_side.take() is None
    threading.Timer(0.2, api_side.enqueue, args=("job-1",)).start()
    worker_side.wait_for_work(threading.Event())
    assert worker_side.take() == "job-1"
    worker_side.close()


def test_a_finished_job_rings_with_its_id(services: Services) -> None:
    listener = finished_jobs(services.settings.data_dir).listen()
    assert listener is not None
    services.store.create("job-1", "pdf_to_text", {"url": "filetoken://unknown"}, {})
    finished = run_job(services, "job-1", "w1")
    assert finished is not None and finished.status == "failed"
    assert listener.wait(5) == ["job-1"]
    listener.close()


def test_a_sync_wait_ends_on_the_ring_not_on_polling(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "RUNG_WAIT_MIN", 600.0)  # a poll would come far too late
    monkeypatch.setattr(waiting, "RUNG_WAIT_MAX", 600.0)

    def finish(job_id: str) -> None:
        services.store.succeed(job_id, {"pageCount": 1})
        finished_jobs(services.settings.data_dir).ring(job_id)

    async def wait() -> list[object]:
        waiters = JobWaiters(services)
        jobs = []
        try:
            for job_id, rings_early in (("job-1", False), ("job-2", True)):
                with waiters.watch(job_id) as watch:
                    services.store.create(job_id, "pdf_to_text", {}, {})
                    if rings_early:  # before the request even waits: the ring is not lost
                        finish(job_id)
                        await asyncio.sleep(0.2)
                    else:
                        asyncio.get_running_loop().call_later(0.2, finish, job_id)
                    jobs.append(await asyncio.wait_for(watch.result(timeout=600), 60))
        finally:
            waiters.close()
        return jobs

    jobs = asyncio.run(wait())
    assert [job.status for job in jobs] == ["success", "success"]


def test_a_sync_wait_without_a_ring_still_sees_the_job_end(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "RUNG_WAIT_MIN", 0.05)
    services.store.create("job-1", "pdf_to_text", {}, {})

    async def wait() -> object:
        waiters = JobWaiters(services)
        # Ended without a ring (say by the maintenance loop): the slow polling sees it.
        asyncio.get_running_loop().call_later(0.2, services.store.fail, "job-1", 408, "late")
        try:
            with waiters.watch("job-1") as watch:
                return await watch.result(timeout=60)
        finally:
            waiters.close()

    job = asyncio.run(wait())
    assert job is not None and job.status == "failed"
