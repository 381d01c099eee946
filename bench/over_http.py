"""The HTTP level: the same work through a running `docmill serve` (2 workers), as a user
sees it.

- Overhead: a 1-page PDF→text sync request against the op called in-process.
- What a user waits for: sync request + download, and async submit + poll + download, for
  text and PNG, beside the reference tool on the same pages.
- Load: 200 async submissions from 20 concurrent clients (errors, submit latency), then
  the time until every job is done; `/job/check` latency on an idle server and under load.

Clients use one keep-alive session each, as a program making many calls would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from bench import corpus
from bench.client import POLL_INTERVAL, TIMEOUT, download, post_json, result_urls, wait_for_job
from bench.context import Context, log
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.jobphases import TracedSyncRequest, phases_note, request_phases
from bench.ops_png import pdftoppm_command
from bench.ops_text import pdftotext_command
from bench.rows import Row, at_most, runs_label
from bench.timing import Timing, measure, measure_pair, tool
from tests.conftest import RunningServer, upload

ONE_PAGE_FILE = "pdfplumber__nics-background-checks-2015-11.pdf"
DOCUMENT_FILE = "pdfjs__tracemonkey.pdf"
PNG_PAGES = 4
OVERHEAD_RUNS, QUICK_OVERHEAD_RUNS = 30, 5
CLIENTS, SUBMISSIONS = 20, 200
QUICK_CLIENTS, QUICK_SUBMISSIONS = 5, 20
CHECK_RUNS = 200
WARM_UP_JOBS = 4  # with 2 workers, enough that each runs one


def run(ctx: Context) -> list[Row]:
    server = ctx.server()
    files = {item.name: item for item in corpus.readable_pdfs()}
    one_page, document = files[ONE_PAGE_FILE], files[DOCUMENT_FILE]
    urls = {name: upload(server, files[name].path) for name in (ONE_PAGE_FILE, DOCUMENT_FILE)}
    session = requests.Session()
    rows = [_overhead_row(ctx, session, server, one_page, urls[ONE_PAGE_FILE])]
    rows += _user_rows(ctx, session, server.url, document, urls[DOCUMENT_FILE])
    rows += _load_rows(ctx, server.url, urls[ONE_PAGE_FILE])
    return rows


def sync_and_download(session: requests.Session, base: str, path: str,
                      body: dict[str, Any]) -> Callable[[], int]:
    def work() -> int:
        return download(session, result_urls(post_json(session, base + path, body)))

    return work


def async_and_download(session: requests.Session, base: str, path: str,
                       body: dict[str, Any]) -> Callable[[], int]:
    def work() -> int:
        job = post_json(session, base + path, {**body, "async": True})
        status = wait_for_job(session, base, job["jobId"])
        if status["status"] != "success":
            raise RuntimeError(f"job failed: {status}")
        return download(session, result_urls(status))

    return work


def warm_workers(session: requests.Session, base: str, path: str, body: dict[str, Any],
                 jobs: int = WARM_UP_JOBS) -> None:
    """Submit `jobs` async jobs at once and wait for them, so that every worker has run
    this op once: a worker's first job of an op pays for imports and, for spreading ops,
    for starting its fork server."""
    ids = [post_json(session, base + path, {**body, "async": True})["jobId"] for _ in range(jobs)]
    for job_id in ids:
        wait_for_job(session, base, job_id)


# -- overhead --------------------------------------------------------------------------


def _overhead_row(ctx: Context, session: requests.Session, server: RunningServer,
                  item: CorpusFile, url: str) -> Row:
    log(".. http: 1-page sync request against the op")
    runs = QUICK_OVERHEAD_RUNS if ctx.quick else OVERHEAD_RUNS
    ours = OpRunner(ctx, "pdf_to_text", [item.path])
    warm_workers(session, server.url, "/v1/pdf/convert/to/text", {"url": url})
    request = TracedSyncRequest(session, f"{server.url}/v1/pdf/convert/to/text", {"url": url})
    http, direct = measure_pair(request, ours, runs)
    ours.discard()
    phases = request_phases(server.data_dir, request.calls[1:])  # not the warm-up
    return Row(
        section="http", level="http", name="PDF→text 1 page, sync request", unit="ms",
        docmill=http.median * 1000, reference=direct.median * 1000,
        tool="the op in-process", target=at_most(6, "difference", 15, "≤ op + 15 ms"),
        runs=runs_label(runs),
        note=f"{item.name}; {phases_note(phases)}",
        details={"phases_ms": phases},
    )


# -- what a user waits for ---------------------------------------------------------------


def _user_rows(ctx: Context, session: requests.Session, base: str, item: CorpusFile,
               url: str) -> list[Row]:
    log(".. http: sync and async, text and PNG")
    text_out = ctx.fresh_dir("pdftotext") / "out.txt"
    text_reference = measure(tool(pdftotext_command(item.path, "", text_out)), ctx.runs)
    prefix = ctx.fresh_dir("pdftoppm") / "page"
    png_reference = measure(
        tool(pdftoppm_command(item.path, "", prefix, 1, PNG_PAGES)), ctx.heavy_runs,
        warmup=tool(pdftoppm_command(item.path, "", prefix, 1, 1)))
    cases = [
        ("PDF→text", "/v1/pdf/convert/to/text", {"url": url}, item.pages, text_reference,
         "pdftotext -layout"),
        ("PDF→PNG", "/v1/pdf/convert/to/png", {"url": url, "pages": f"0-{PNG_PAGES - 1}"},
         PNG_PAGES, png_reference, "pdftoppm -r 150 -png"),
    ]
    rows = []
    for what, path, body, pages, reference, name in cases:
        warm_workers(session, base, path, body)
        for mode, make in (("sync + download", sync_and_download),
                           ("async submit + poll + download", async_and_download)):
            timing = measure(make(session, base, path, body), ctx.runs)
            rows.append(Row(
                section="http", level="http", name=f"{what} {pages} pages, {mode}",
                unit="s", docmill=timing.median, reference=reference.median, tool=name,
                runs=runs_label(ctx.runs, reference.runs),
                note=f"{item.name}; polling every {POLL_INTERVAL * 1000:.0f} ms"
                if mode.startswith("async") else item.name,
            ))
    return rows


# -- load ------------------------------------------------------------------------------


@dataclass
class LoadResult:
    submit: Timing = field(default_factory=Timing)
    check: Timing = field(default_factory=Timing)
    errors: list[str] = field(default_factory=list)
    failed_jobs: int = 0
    seconds: float = 0.0  # from the first submission until every job was done


def _client(base: str, url: str, count: int, start: threading.Barrier,
            result: LoadResult, lock: threading.Lock) -> None:
    """One client: submit `count` async jobs as fast as it can, then wait for each."""
    session = requests.Session()
    submit, checks, errors, job_ids = [], [], [], []
    start.wait()
    for _ in range(count):
        started = time.perf_counter()
        try:
            data = post_json(session, f"{base}/v1/pdf/convert/to/text", {"url": url, "async": True})
            job_ids.append(data["jobId"])
        except (RuntimeError, requests.RequestException, ValueError) as error:
            errors.append(str(error)[:200])
        submit.append(time.perf_counter() - started)
    failed = sum(1 for job_id in job_ids
                 if wait_for_job(session, base, job_id, checks)["status"] != "success")
    with lock:
        result.submit.samples.extend(submit)
        result.check.samples.extend(checks)
        result.errors.extend(errors)
        result.failed_jobs += failed


def run_load(base: str, url: str, clients: int, submissions: int) -> LoadResult:
    result, lock = LoadResult(), threading.Lock()
    start = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=_client,
                                args=(base, url, submissions // clients, start, result, lock))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def _idle_check_timing(base: str, url: str, runs: int) -> Timing:
    session = requests.Session()
    job = post_json(session, f"{base}/v1/pdf/convert/to/text", {"url": url, "async": True})
    wait_for_job(session, base, job["jobId"])
    return measure(lambda: session.get(f"{base}/v1/job/check", params={"jobid": job["jobId"]},
                                       timeout=TIMEOUT).json(), runs)


def _load_rows(ctx: Context, base: str, url: str) -> list[Row]:
    clients = QUICK_CLIENTS if ctx.quick else CLIENTS
    submissions = QUICK_SUBMISSIONS if ctx.quick else SUBMISSIONS
    log(f".. http: {submissions} async submissions from {clients} clients")
    load = run_load(base, url, clients, submissions)
    idle = _idle_check_timing(base, url, CHECK_RUNS // 4 if ctx.quick else CHECK_RUNS)
    scope = f"{submissions} async 1-page PDF→text jobs from {clients} concurrent clients"
    errors = len(load.errors) + load.failed_jobs
    return [
        Row(section="http", level="http", name="Async load: errors", unit="", docmill=errors,
            target=at_most(6, "value", 0, "0"),
            note=f"{scope}: all done in {load.seconds:.1f} s "
                 f"({submissions / load.seconds:.0f} jobs/s); "
                 + (f"errors: {'; '.join(load.errors[:3])}" if load.errors else
                    f"{load.failed_jobs} jobs failed")),
        Row(section="http", level="http", name="Async load: submit latency p99", unit="ms",
            docmill=load.submit.quantile(0.99) * 1000,
            target=at_most(6, "value", 100, "≤ 100 ms"), runs=str(load.submit.runs),
            note=f"median {load.submit.median * 1000:.1f} ms"),
        Row(section="http", level="http", name="/job/check median, idle server", unit="ms",
            docmill=idle.median * 1000, target=at_most(6, "value", 5, "≤ 5 ms"),
            runs=str(idle.runs),
            note=f"under the load above: median {load.check.median * 1000:.1f} ms, "
                 f"p99 {load.check.quantile(0.99) * 1000:.1f} ms over {load.check.runs} calls"),
    ]
