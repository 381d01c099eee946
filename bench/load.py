"""Load: many concurrent clients against a real `docmill serve`, for a fixed time.

`python -m bench.load [--duration 60] [--clients 50] [--workers 2]` starts a server (its own
processes; this process is only the client), uploads small corpus files, then runs asyncio
clients (httpx) that send a mix of the five operations, sync and async, plus a few requests
that must fail (an encrypted PDF without its password). It reports requests/s, p50/p99
latency, the 5xx count (must be 0), lost jobs (every job id issued must end in success or a
deliberate 4xx error) and the memory (RSS) of each docmill process before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import CORPUS, RunningServer, start_server, stop_server, upload

POLL_INTERVAL = 0.25  # seconds between two /job/check calls of one async client
DRAIN_TIMEOUT = 300.0  # seconds to wait, after the run, for every issued job to finish
REQUEST_TIMEOUT = 600.0


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: an op path, its input file, extra params, its weight."""

    name: str
    path: str
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    weight: int = 1
    expected_error: int = 0  # a deliberate error: the job must fail with this code


MIX = (
    Kind("text", "/pdf/convert/to/text", "pdfjs__tracemonkey.pdf", {"pages": "0-2"}, 3),
    Kind("png", "/pdf/convert/to/png", "pdfsamples__crazyones-pdfa.pdf", {"pages": "0"}, 3),
    Kind("image", "/pdf/convert/from/image", "ocrmypdf__baiona_color.jpg", {}, 3),
    Kind("doc", "/pdf/convert/from/doc", "docling__word_sample.docx", {}, 2),
    Kind("optimize", "/pdf/optimize", "ocrmypdf__cardinal.pdf", {}, 2),
    Kind("locked", "/pdf/convert/to/text", "pdfplumber__password-example.pdf", {}, 1, 441),
)


@dataclass
class Tally:
    """Everything the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind → seconds
    statuses: Counter = field(default_factory=Counter)  # HTTP status of every request
    job_ids: dict[str, Kind] = field(default_factory=dict)  # every job id issued
    unexpected: list[str] = field(default_factory=list)  # answers that were not as planned
    requests: int = 0

    def record(self, kind: Kind, seconds: float) -> None:
        self.latencies.setdefault(kind.name, []).append(seconds)


# -- the clients ----------------------------------------------------------------------------


async def send(client: httpx.AsyncClient, tally: Tally, method: str, url: str,
               **kwargs: Any) -> httpx.Response:
    response = await client.request(method, url, **kwargs)
    tally.requests += 1
    tally.statuses[response.status_code] += 1
    return response


async def run_sync(client: httpx.AsyncClient, tally: Tally, base: str, kind: Kind,
                   body: dict[str, Any]) -> None:
    started = time.monotonic()
    response = await send(client, tally, "POST", base + kind.path, json=body)
    answer = response.json()
    if "jobId" in answer:
        tally.job_ids[answer["jobId"]] = kind
    expected = kind.expected_error or 200
    if response.status_code != expected:
        tally.unexpected.append(f"sync {kind.name}: {response.status_code} {answer}")
    tally.record(kind, time.monotonic() - started)


async def run_async(client: httpx.AsyncClient, tally: Tally, base: str, kind: Kind,
                    body: dict[str, Any]) -> None:
    started = time.monotonic()
    response = await send(client, tally, "POST", base + kind.path, json={**body, "async": True})
    if response.status_code != 200:
        tally.unexpected.append(f"async {kind.name}: {response.status_code} {response.text}")
        return
    job_id = response.json()["jobId"]
    tally.job_ids[job_id] = kind
    status = await wait_for_job(client, tally, base, job_id, started + REQUEST_TIMEOUT)
    expected = "failed" if kind.expected_error else "success"
    if status.get("status") != expected:
        tally.unexpected.append(f"async {kind.name} {job_id}: {status}")
    tally.record(kind, time.monotonic() - started)


async def wait_for_job(client: httpx.AsyncClient, tally: Tally, base: str, job_id: str,
                       deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        response = await send(client, tally, "GET", base + "/job/check",
                              params={"jobid": job_id})
        status = response.json()
        if status.get("status") != "working":
            return status
        await asyncio.sleep(POLL_INTERVAL)
    return {"status": "working"}


async def client_loop(number: int, base: str, urls: dict[str, str], tally: Tally,
                      deadline: float) -> None:
    rng = random.Random(number)
    kinds = [kind for kind in MIX for _ in range(kind.weight)]
    limits = httpx.Limits(max_connections=1)  # one keep-alive connection per client
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client:
        while time.monotonic() < deadline:
            kind = rng.choice(kinds)
            body = {"url": urls[kind.source], **kind.params}
            runner = run_async if rng.random() < 0.5 else run_sync
            try:
                await runner(client, tally, base, kind, body)
            except (httpx.HTTPError, ValueError) as error:
                tally.unexpected.append(f"{kind.name}: {type(error).__name__}: {error}")


async def final_states(base: str, tally: Tally) -> Counter:
    """The final state of every job id issued, waiting up to DRAIN_TIMEOUT for stragglers."""
    states: Counter = Counter()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    async with httpx.AsyncClient(timeout=60) as client:
        for job_id, kind in list(tally.job_ids.items()):
            status = await wait_for_job(client, Tally(), base, job_id, deadline)
            state = status.get("status", "?")
            deliberate = kind.expected_error and status.get("errorCode") == kind.expected_error
            states["success" if state == "success" else
                   "deliberate error" if deliberate else f"LOST ({state})"] += 1
    return states


# -- the processes' memory ------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def rss_by_process(pid: int) -> dict[str, float]:
    """RSS in MiB of each process of the server, labelled by pid and command."""
    memory = {}
    for child in process_tree(pid):
        try:
            status = Path(f"/proc/{child}/status").read_text()
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmRSS:")), 0)
        memory[f"{child} {_label(command)}"] = rss / 1024
    return memory


def _label(command: list[bytes]) -> str:
    text = " ".join(part.decode(errors="replace") for part in command if part)
    labels = (("soffice", "soffice"), ("resource_tracker", "resource tracker"),
              ("forkserver", "fork server"), ("spawn_main", "worker"), (" serve", "serve"))
    for word, label in labels:
        if word in text:
            return label
    return Path(command[0].decode(errors="replace")).name if command else "?"


# -- the run --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(tally: Tally, states: Counter, seconds: float, before: dict[str, float],
            after: dict[str, float]) -> dict[str, Any]:
    every = [value for values in tally.latencies.values() for value in values]
    return {
        "seconds": round(seconds, 1),
        "operations": len(every),
        "operations_per_s": round(len(every) / seconds, 2),
        "http_requests": tally.requests,
        "http_requests_per_s": round(tally.requests / seconds, 1),
        "latency_s": {
            name: {"n": len(values), "p50": round(statistics.median(values), 3),
                   "p99": round(percentile(values, 0.99), 3)}
            for name, values in sorted({**tally.latencies, "all": every}.items()) if values
        },
        "http_statuses": dict(sorted(tally.statuses.items())),
        "5xx": sum(count for status, count in tally.statuses.items() if status >= 500),
        "jobs_issued": len(tally.job_ids),
        "job_final_states": dict(states),
        "jobs_lost": sum(count for state, count in states.items() if state.startswith("LOST")),
        "unexpected_answers": tally.unexpected[:20],
        "rss_mib_before": {k: round(v, 1) for k, v in before.items()},
        "rss_mib_after": {k: round(v, 1) for k, v in after.items()},
    }


async def run_load(server: RunningServer, clients: int, duration: float) -> dict[str, Any]:
    urls = {kind.source: upload(server, CORPUS / kind.source) for kind in MIX}
    before = rss_by_process(server.process.pid)
    tally = Tally()
    started = time.monotonic()
    await asyncio.gather(*(client_loop(n, server.url, urls, tally, started + duration)
                           for n in range(clients)))
    seconds = time.monotonic() - started
    states = await final_states(server.url, tally)
    after = rss_by_process(server.process.pid)
    return summary(tally, states, seconds, before, after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="docmill worker processes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="docmill-load-") as scratch:
        server = start_server(Path(scratch) / "data", workers=args.workers,
                              extra_env={"DOCMILL_LOG_LEVEL": "warning"})
        try:
            figures = asyncio.run(run_load(server, args.clients, args.duration))
        finally:
            stop_server(server)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = figures["5xx"] == 0 and figures["jobs_lost"] == 0 and not figures["unexpected_answers"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
