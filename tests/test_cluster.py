"""Distributed mode end to end: 2 API nodes and 2 worker machines on Redis and S3 (moto).

Everything is real and on loopback: `redis-server`, moto's S3 server, `docmill serve
--no-workers` twice and `docmill worker --concurrency 1` twice, as separate processes with
separate data directories, sharing nothing but Redis and the bucket. The tests run in file
order on one cluster; the destructive ones (a worker machine killed, an API node stopped,
Redis lost) come last.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from docmill.jobs.store_redis import RedisJobStore
from docmill.operation import operations
from tests import test_seeds
from tests.cluster import (
    Backend,
    RunningWorker,
    cluster_env,
    kill_worker_machine,
    restart_backend,
    start_api_node,
    start_redis,
    start_s3,
    start_worker,
    stop_worker,
    wait_for_workers,
)
from tests.conftest import CORPUS, RunningServer, stop_server, upload, wait_for_job

TEXT_PDF = CORPUS / "pdfjs__tracemonkey.pdf"  # 14 pages
LONG_PDF = CORPUS / "unstructured__DA-619p.pdf"  # 619 pages: a job that runs for a while

pytestmark = pytest.mark.timeout(900)


@dataclass
class Cluster:
    redis: Backend
    s3: Backend
    env: dict[str, str]
    api: list[RunningServer]
    workers: list[RunningWorker]
    root: Path

    def add_worker(self, name: str) -> RunningWorker:
        worker = start_worker(self.root / name, self.env)
        self.workers.append(worker)
        return worker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    redis = start_redis(root / "redis")
    s3 = start_s3(root / "s3")
    env = cluster_env(redis, s3)
    running = Cluster(redis, s3, env, [], [], root)
    try:
        running.api = [start_api_node(root / "api-1", env), start_api_node(root / "api-2", env)]
        running.add_worker("worker-1")
        running.add_worker("worker-2")
        wait_for_workers(running.api[0], 2)
        yield running
    finally:
        for worker in running.workers:
            stop_worker(worker)
        for node in running.api:
            stop_server(node)
        s3.stop()
        redis.stop()


def submit(node: RunningServer, path: str, **params: object) -> dict:
    answer = requests.post(node.url + path, json=params, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def metric_samples(node: RunningServer) -> dict[tuple[str, tuple], float]:
    text = requests.get(node.url + "/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def worker_machine_of(cluster: Cluster, pid: int) -> RunningWorker:
    """The `docmill worker` (its own process group) that runs worker process `pid`."""
    group = os.getpgid(pid)
    return next(worker for worker in cluster.workers if worker.process.pid == group)


# -- a healthy cluster -------------------------------------------------------------------------
def test_every_node_reports_the_shared_backends(cluster):
    for node in cluster.api:
        health = requests.get(node.url + "/health", timeout=10)
        assert health.status_code == 200, health.text
        summary = health.json()
        backends = summary["backends"]
        assert backends["store"] == {"backend": "redis", "ok": True}
        assert backends["queue"] == {"backend": "redis", "ok": True}
        assert backends["storage"]["backend"] == "s3" and backends["storage"]["ok"]
        assert summary["workers"]["alive"] == 2


def test_job_submitted_to_one_node_is_checked_on_the_other(cluster):
    first, second = cluster.api
    url = upload(first, TEXT_PDF)
    assert url.startswith(f"http://127.0.0.1:{cluster.s3.port}/")  # the bucket's own link
    accepted = submit(first, "/pdf/convert/to/png", url=url, pages="0-2", **{"async": True})
    status = wait_for_job(second.url, accepted["jobId"])
    assert status["status"] == "success" and status["pageCount"] == 3
    assert status["url"].split("?")[0] == accepted["url"].split("?")[0]  # same object
    page_urls = requests.get(accepted["url"], timeout=10).json()
    assert len(page_urls) == 3
    assert requests.get(page_urls[0], timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"
    # The same file, given back through an unencoded query string (cut at its first '&').
    cut = url.split("&")[0]
    sync = requests.get(f"{second.url}/pdf/convert/to/png?pages=0&url={cut}", timeout=120).json()
    assert sync["error"] is False and len(sync["urls"]) == 1


def test_metrics_report_queue_jobs_durations_and_engines(cluster):
    first, second = cluster.api
    samples = metric_samples(first)
    success = ("docmill_jobs", (("status", "success"),))
    assert samples[success] >= 2
    assert metric_samples(second)[success] == samples[success]  # cluster-wide: same store
    assert samples[("docmill_queue_depth", ())] == 0
    assert samples[("docmill_workers", ())] == 2
    png = (("operation", "pdf_to_png"), ("status", "success"))
    assert samples[("docmill_job_duration_seconds_count", png)] >= 2
    assert samples[("docmill_job_duration_seconds_sum", png)] > 0
    for component in ("store", "queue", "storage"):
        backend = {"store": "redis", "queue": "redis", "storage": "s3"}[component]
        labels = (("backend", backend), ("component", component))
        assert samples[("docmill_backend_up", labels)] == 1
    if any("libreoffice" in op.engines for op in operations().values()):
        assert samples[("docmill_engine_ready", (("engine", "libreoffice"),))] == 2


@pytest.mark.parametrize("seed", sorted(test_seeds.SEED_CHECKS))
def test_vendor_programs_against_the_cluster(cluster, static_files, tmp_path, seed):
    path, check = test_seeds.SEED_CHECKS[seed]
    if not any(path in op.paths for op in operations().values()):
        pytest.skip(f"{path} is not implemented yet")
    check(cluster.api[int(seed) % 2], static_files, tmp_path)


def worker_running(api: RunningServer, job_id: str, timeout: float = 60) -> dict:
    """The worker (as /health lists it) that runs `job_id`, once one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = requests.get(api.url + "/health", timeout=10).json()["workers"]["list"]
        runner = next((w for w in workers if w["job"] == job_id), None)
        if runner is not None:
            return runner
        time.sleep(0.05)
    raise AssertionError(f"no worker took job {job_id}")


def test_abort_stops_the_job_on_whichever_machine_runs_it(cluster):
    first, second = cluster.api
    url = upload(first, LONG_PDF)
    accepted = submit(first, "/pdf/convert/to/png", url=url, **{"async": True})
    runner = worker_running(second, accepted["jobId"])
    assert RedisJobStore(cluster.redis.url).abort(accepted["jobId"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and os.path.exists(f"/proc/{runner['pid']}"):
        time.sleep(0.2)
    # The worker dropped the work (its process ended; its machine started a fresh one).
    assert not os.path.exists(f"/proc/{runner['pid']}") or _zombie(runner["pid"])
    status = requests.get(second.url + "/job/check", params={"jobid": accepted["jobId"]},
                          timeout=10).json()
    assert status["status"] == "aborted"
    wait_for_workers(first, 2)


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] == "Z"


# -- failures ------------------------------------------------------------------------------------
def test_worker_machine_killed_mid_job_the_job_is_finished_by_the_other(cluster):
    first, second = cluster.api
    url = upload(first, LONG_PDF)
    accepted = submit(first, "/pdf/convert/to/png", url=url, pages="0-59", **{"async": True})
    runner = worker_running(second, accepted["jobId"])
    machine = worker_machine_of(cluster, runner["pid"])
    kill_worker_machine(machine)
    cluster.workers.remove(machine)
    status = wait_for_job(second.url, accepted["jobId"], timeout=300)
    assert status["status"] == "success", status
    assert status["pageCount"] == 60
    assert len(requests.get(accepted["url"], timeout=10).json()) == 60
    # A new worker machine joins; the cluster is whole again.
    cluster.add_worker("worker-3")
    wait_for_workers(second, 2)


def test_api_node_stopped_the_other_keeps_serving_every_job(cluster):
    first, second = cluster.api
    url = upload(first, TEXT_PDF)
    job_ids = [
        submit(first, "/pdf/convert/to/png", url=url, pages=str(page), **{"async": True})["jobId"]
        for page in range(4)
    ]
    stop_server(first)
    cluster.api.remove(first)
    for job_id in job_ids:
        assert wait_for_job(second.url, job_id)["status"] == "success"
    answer = submit(second, "/pdf/convert/to/png", url=url, pages="0")
    assert answer["error"] is False and requests.get(answer["urls"][0], timeout=10).ok


def test_lost_redis_is_reported_retried_and_survived(cluster):
    node = cluster.api[-1]
    done = submit(node, "/pdf/convert/to/png", url=upload(node, TEXT_PDF), pages="0")
    before = {w["pid"] for w in wait_for_workers(node, 2)}
    cluster.redis.stop()
    try:
        health = requests.get(node.url + "/health", timeout=30)
        assert health.status_code == 503
        backends = health.json()["backends"]
        assert backends["store"]["ok"] is False and "unreachable" in backends["store"]["error"]
        check = requests.get(node.url + "/job/check", params={"jobid": done["jobId"]},
                             timeout=30)
        assert check.status_code == 503 and check.json()["error"] is True
        time.sleep(4)  # long enough for a crash loop to show, were there one
        for pid in before:
            os.kill(pid, 0)  # the same worker processes: none crashed and was replaced
    finally:
        restart_backend(cluster.redis)
    assert {w["pid"] for w in wait_for_workers(node, 2, timeout=60)} == before
    check = requests.get(node.url + "/job/check", params={"jobid": done["jobId"]}, timeout=10)
    assert check.json()["status"] == "success"  # job records survived the Redis restart
    again = submit(node, "/pdf/convert/to/png", url=upload(node, TEXT_PDF), pages="1")
    assert again["error"] is False


def test_workers_stop_cleanly_and_give_back_nothing_lost(cluster):
    for worker in list(cluster.workers):
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0, worker.log()
        cluster.workers.remove(worker)
