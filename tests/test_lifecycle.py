"""Processes: clean shutdown, killed workers, restarts on the same data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests

from tests.conftest import CORPUS, start_server, stop_server, upload, wait_for_job

BIG_PDF = CORPUS / "unstructured__DA-619p.pdf"
SMALL_PDF = CORPUS / "pdfsamples__crazyones-pdfa.pdf"


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
        children = {int(child) for child in out.split()}
        found |= children
        pending.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] != "Z"


def health(server) -> dict:
    return requests.get(server.url + "/health", timeout=10).json()


def test_sigterm_stops_every_process(tmp_path):
    server = start_server(tmp_path / "data", workers=2)
    children = descendants(server.process.pid)
    assert len(children) >= 2
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(60) == 0
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)]


def test_killed_worker_job_is_retried_then_failed_and_workers_replaced(tmp_path):
    server = start_server(tmp_path / "data", workers=2)
    try:
        url = upload(server, BIG_PDF)
        job_id = requests.post(server.url + "/pdf/convert/to/png",
                               json={"url": url, "async": True}, timeout=30).json()["jobId"]
        killed = set()
        deadline = time.monotonic() + 120
        status = "working"
        while status == "working" and time.monotonic() < deadline:
            for worker in health(server)["workers"]["list"]:
                if worker["job"] == job_id and worker["pid"] not in killed:
                    os.kill(worker["pid"], signal.SIGKILL)
                    killed.add(worker["pid"])
            status = requests.get(server.url + "/job/check", params={"jobid": job_id},
                                  timeout=10).json()["status"]
            time.sleep(0.2)
        check = requests.get(server.url + "/job/check", params={"jobid": job_id}, timeout=10)
        assert len(killed) >= 2
        assert check.json()["status"] == "failed" and "killed" in check.json()["message"]
        deadline = time.monotonic() + 60
        while health(server)["workers"]["alive"] < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health(server)["workers"]["alive"] == 2
        small = requests.post(server.url + "/pdf/convert/to/png",
                              json={"url": upload(server, SMALL_PDF)}, timeout=60).json()
        assert small["error"] is False
    finally:
        stop_server(server)


def test_restart_on_the_same_data_directory_loses_nothing(tmp_path):
    data = tmp_path / "data"
    server = start_server(data, workers=1)
    url = upload(server, SMALL_PDF)
    done = requests.post(server.url + "/pdf/convert/to/png", json={"url": url}, timeout=60).json()
    queued = [
        requests.post(server.url + "/pdf/convert/to/png",
                      json={"url": url, "async": True}, timeout=30).json()["jobId"]
        for _ in range(6)
    ]
    stop_server(server)
    server = start_server(data, workers=1, port=int(server.url.rsplit(":", 1)[1]))
    try:
        deadline = time.monotonic() + 120
        pending = set(queued)
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                status = requests.get(server.url + "/job/check", params={"jobid": job_id},
                                      timeout=10).json()["status"]
                assert status in ("working", "success")
                if status == "success":
                    pending.discard(job_id)
            time.sleep(0.3)
        assert not pending
        assert requests.get(done["urls"][0], timeout=10).status_code == 200
        check = requests.get(server.url + "/job/check", params={"jobid": done["jobId"]},
                             timeout=10).json()
        assert check["status"] == "success"
    finally:
        stop_server(server)


def test_job_past_the_time_limit_is_stopped_with_408(tmp_path):
    server = start_server(tmp_path / "data", workers=1, extra_env={"DOCMILL_JOB_TIMEOUT": "2"})
    try:
        url = upload(server, BIG_PDF)
        job_id = requests.post(server.url + "/pdf/convert/to/png",
                               json={"url": url, "async": True}, timeout=30).json()["jobId"]
        status = wait_for_job(server.url, job_id, timeout=60)
        assert status["status"] == "failed" and status["errorCode"] == 408
        small = requests.post(server.url + "/pdf/convert/to/png",
                              json={"url": upload(server, SMALL_PDF)}, timeout=60).json()
        assert small["error"] is False
    finally:
        stop_server(server)


def test_workers_and_their_engines_run_at_a_lower_priority(server):
    # DOCMILL_WORKER_NICE (5): the API stays responsive while every worker is busy.
    api_nice = os.getpriority(os.PRIO_PROCESS, server.process.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # LibreOffice and page helpers start in the background
        workers_and_engines = [pid for pid in descendants(server.process.pid)
                               if _runs(pid, ("spawn_main", "soffice", "forkserver"))]
        if any(_runs(pid, ("soffice",)) for pid in workers_and_engines):
            break
        time.sleep(0.2)
    assert workers_and_engines
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in workers_and_engines} == {api_nice + 5}


def _runs(pid: int, words: tuple[str, ...]) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().decode(errors="replace")
    except OSError:
        return False
    return any(word in command for word in words)
