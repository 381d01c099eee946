"""A PDF.co client as the benchmarks use it: post a request, poll a job, download results."""

from __future__ import annotations

import time
from typing import Any

import requests

TIMEOUT = 300
POLL_INTERVAL = 0.01  # seconds between two /job/check calls of one waiting client


def post_json(session: requests.Session, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body; the answer's JSON, or RuntimeError for an error answer."""
    answer = session.post(url, json=body, timeout=TIMEOUT)
    data = answer.json()
    if answer.status_code != 200 or data.get("error"):
        raise RuntimeError(f"{url} answered {answer.status_code}: {data}")
    return data


def result_urls(data: dict[str, Any]) -> list[str]:
    return list(data.get("urls") or [data["url"]])


def download(session: requests.Session, urls: list[str]) -> int:
    """GET every URL; the total bytes."""
    total = 0
    for url in urls:
        answer = session.get(url, timeout=TIMEOUT)
        answer.raise_for_status()
        total += len(answer.content)
    return total


def wait_for_job(session: requests.Session, base: str, job_id: str,
                 latencies: list[float] | None = None) -> dict[str, Any]:
    """Poll /job/check until the job ends; each call's latency goes to `latencies`."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        started = time.perf_counter()
        data = session.get(f"{base}/v1/job/check", params={"jobid": job_id},
                           timeout=TIMEOUT).json()
        if latencies is not None:
            latencies.append(time.perf_counter() - started)
        if data["status"] != "working":
            return data
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"job {job_id} still working after {TIMEOUT} s")
