"""Cluster throughput: a batch of PDF→PNG jobs on 1 worker machine, then on 2 (pages/s).

Everything real and on loopback, in one run: redis-server, moto's S3 server, one API node
(`docmill serve --no-workers`) and `docmill worker --concurrency 1` machines. The batch is
submitted async to the API node, the clock stops when /job/check says the last job is done.
Uploads of the PNGs to the bucket are part of each job, as in production.

    .venv/bin/python -m bench.cluster_throughput [--jobs 24] [--rounds 3] [--file F.pdf] [--pin]

Rounds alternate 1 worker, 2 workers, 1, 2...: drift in the machine's load then hits both
alike; the table gives each round and the median of each.

On one small machine the "machines" share its cores with Redis, the S3 server and the API
node, so the figure for 2 workers is a floor for what 2 real machines give. A job renders
its pages in as many processes as its worker has cores (up to 4), so unpinned, one worker
already uses every core here; `--pin` gives each worker machine a core of its own
(`taskset`), like two one-core machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import requests

from tests.cluster import (
    cluster_env,
    start_api_node,
    start_redis,
    start_s3,
    start_worker,
    stop_worker,
    wait_for_workers,
)
from tests.conftest import CORPUS, RunningServer, stop_server, upload, wait_for_job


def run_batch(api: RunningServer, url: str, jobs: int) -> tuple[float, int]:
    """Submit `jobs` async PDF→PNG jobs; return (seconds until all are done, pages)."""
    started = time.perf_counter()
    job_ids = [
        requests.post(api.url + "/pdf/convert/to/png", json={"url": url, "async": True},
                      timeout=60).json()["jobId"]
        for _ in range(jobs)
    ]
    pages = 0
    for job_id in job_ids:
        status = wait_for_job(api.url, job_id, timeout=1800)
        if status["status"] != "success":
            raise RuntimeError(f"job {job_id} did not succeed: {status}")
        pages += status["pageCount"]
    return time.perf_counter() - started, pages


def measure(root: Path, env: dict[str, str], api: RunningServer, url: str, workers: int,
            jobs: int, pin: bool) -> dict[str, float]:
    cores = os.cpu_count() or 1
    machines = [
        start_worker(root / f"w{workers}-{index}", env, cpus=str(index % cores) if pin else None)
        for index in range(workers)
    ]
    try:
        wait_for_workers(api, workers)
        run_batch(api, url, workers)  # warm-up: every worker has run a job once
        seconds, pages = run_batch(api, url, jobs)
    finally:
        for machine in machines:
            stop_worker(machine)
    return {"workers": workers, "jobs": jobs, "pages": pages, "seconds": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 1), "load_1min": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24, help="jobs in each batch")
    parser.add_argument("--rounds", type=int, default=3, help="batches per worker count")
    parser.add_argument("--file", default="pdfjs__tracemonkey.pdf", help="corpus PDF")
    parser.add_argument("--pin", action="store_true",
                        help="pin each worker machine to a core of its own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docmill-bench-") as scratch:
        root = Path(scratch)
        redis, s3 = start_redis(root / "redis"), start_s3(root / "s3")
        env = cluster_env(redis, s3)
        api = start_api_node(root / "api", env)
        try:
            url = upload(api, CORPUS / args.file)
            results = [measure(root, env, api, url, workers, args.jobs, args.pin)
                       for _ in range(args.rounds) for workers in (1, 2)]
        finally:
            stop_server(api)
            s3.stop()
            redis.stop()
    print(json.dumps({"file": args.file, "cpus": os.cpu_count(), "pinned": args.pin,
                      "python": platform.python_version(), "results": results}, indent=1))
    print("\n| round | workers | jobs | pages | seconds | pages/s | load (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for index, row in enumerate(results):
        print(f"| {index // 2 + 1} | {row['workers']} | {row['jobs']} | {row['pages']} "
              f"| {row['seconds']} | {row['pages_per_s']} | {row['load_1min']:.1f} |")
    medians = {workers: statistics.median(row["pages_per_s"] for row in results
                                          if row["workers"] == workers) for workers in (1, 2)}
    print(f"\nmedian pages/s: 1 worker {medians[1]:.1f}, 2 workers {medians[2]:.1f} "
          f"(x{medians[2] / medians[1]:.2f})")


if __name__ == "__main__":
    main()
