"""DOC/DOCX/RTF/ODT→PDF: docmill's `doc_to_pdf` (its warm LibreOffice pool) against a warm
LibreOffice listener driven over UNO, and against a cold `soffice --convert-to pdf`.

- Per small document (at most `SMALL_PAGES` pages once converted): the op called
  in-process; the listener's own conversion, timed over just its load and store; a cold
  `soffice --headless --convert-to pdf` with a fresh profile each run.
- A batch of 20 small documents, 2 at a time: through a docmill server with 2 workers
  (sync requests from 2 clients), against 2 warm listeners side by side.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench import corpus
from bench.context import Context, clear, log
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.jobphases import TracedSyncRequest, phases_note, request_phases
from bench.rows import Row, at_least, at_most, runs_label
from bench.timing import OwnTime, measure_alternating, time_once, tool
from docmill.errors import DocmillError
from tests.conftest import free_port, upload

SMALL_PAGES = 20
BATCH, QUICK_BATCH = 20, 6
QUICK_FILES = ("docling__word_sample.docx", "tika__testRTFVarious.rtf",
               "docling__greek_heading_styles.doc")
LISTENER_START_TIMEOUT = 60.0
PDF_EXPORT = "writer_pdf_Export"  # every document here is a Writer document


class Listener:
    """A warm `soffice --headless --accept=...` of our own, converting over UNO."""

    def __init__(self, profile: Path) -> None:
        import uno

        self._uno = uno
        port = free_port()
        self.process = subprocess.Popen(
            ["soffice", f"-env:UserInstallation={profile.absolute().as_uri()}", "--headless",
             "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck",
             f"--accept=socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, stopped as one
        )
        self.desktop = self._connect(port)
        self.last_close = 0.0  # seconds the last conversion's close took (not timed)

    def _connect(self, port: int) -> Any:
        from com.sun.star.connection import NoConnectException

        local = self._uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        deadline = time.monotonic() + LISTENER_START_TIMEOUT
        while True:
            try:
                remote = resolver.resolve(
                    f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext")
                break
            except NoConnectException:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the LibreOffice listener did not start") from None
                time.sleep(0.1)
        return remote.ServiceManager.createInstanceWithContext(
            "com.sun.star.frame.Desktop", remote)

    def _properties(self, **values: Any) -> tuple[Any, ...]:
        from com.sun.star.beans import PropertyValue

        return tuple(PropertyValue(Name=name, Value=value) for name, value in values.items())

    def convert(self, source: Path, target: Path) -> OwnTime:
        """Convert one document; returns the seconds of its load and store alone."""
        started = time.perf_counter()
        document = self.desktop.loadComponentFromURL(
            self._uno.systemPathToFileUrl(str(source.absolute())), "_blank", 0,
            self._properties(Hidden=True, ReadOnly=True))
        document.storeToURL(self._uno.systemPathToFileUrl(str(target.absolute())),
                            self._properties(FilterName=PDF_EXPORT))
        seconds = time.perf_counter() - started
        document.close(True)
        self.last_close = time.perf_counter() - started - seconds
        return OwnTime(seconds)

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.desktop.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@dataclass
class DocumentResult:
    file: CorpusFile
    pages: int
    ours: float  # median seconds
    listener: float
    cold: float
    listener_close: float  # median seconds of the listener's close, outside its figure


def cold_conversion(ctx: Context, source: Path) -> Callable[[], object]:
    """A cold `soffice --convert-to pdf` with a fresh profile (removed after the run)."""
    def work() -> object:
        folder = ctx.fresh_dir("cold")
        try:
            return tool(["soffice", f"-env:UserInstallation={(folder / 'profile').as_uri()}",
                         "--headless", "--convert-to", "pdf", "--outdir", folder / "out",
                         source], timeout=300)()
        finally:
            clear(folder)

    return work


def run(ctx: Context) -> list[Row]:
    from docmill.engines.libreoffice import get_pool, stop_pool

    log(".. office: starting docmill's pool and two listeners")
    pool_seconds = time_once(get_pool)
    listeners = [Listener(ctx.fresh_dir("listener") / "profile") for _ in range(2)]
    try:
        documents = _small_documents(ctx)
        results = [_measure_document(ctx, item, pages, listeners[0])
                   for item, pages in documents]
        batch_rows = _batch_rows(ctx, [item for item, _ in documents], listeners)
    finally:
        for listener in listeners:
            listener.stop()
        stop_pool()
    return [*_document_rows(ctx, results, pool_seconds), *batch_rows]


def _small_documents(ctx: Context) -> list[tuple[CorpusFile, int]]:
    """Word-processor documents of at most SMALL_PAGES pages, with their page counts."""
    files = corpus.office_documents()
    if ctx.quick:
        files = corpus.pick(files, QUICK_FILES)
    small = []
    for item in files:
        try:
            runner = OpRunner(ctx, "doc_to_pdf", [item.path])
            runner()
            pages = runner.result.page_count if runner.result else 0
        except DocmillError as error:
            log(f"   {item.name}: {error.message}")
            continue
        if pages <= SMALL_PAGES:
            small.append((item, pages))
    return small


def _measure_document(ctx: Context, item: CorpusFile, pages: int,
                      listener: Listener) -> DocumentResult:
    log(f".. office: {item.name}")
    ours = OpRunner(ctx, "doc_to_pdf", [item.path])
    target = ctx.fresh_dir("listener-out") / "out.pdf"
    closes: list[float] = []

    def listener_conversion() -> OwnTime:
        seconds = listener.convert(item.path, target)
        closes.append(listener.last_close)
        return seconds

    warm = measure_alternating([ours, listener_conversion], [ctx.runs, ctx.runs])
    [cold] = measure_alternating([cold_conversion(ctx, item.path)], [ctx.heavy_runs],
                                 warm=False)
    ours.discard()
    return DocumentResult(item, pages, warm[0].median, warm[1].median, cold.median,
                          statistics.median(closes))


def _document_rows(ctx: Context, results: list[DocumentResult],
                   pool_seconds: float) -> list[Row]:
    ours = statistics.median(r.ours for r in results)
    listener = statistics.median(r.listener for r in results)
    cold = statistics.median(r.cold for r in results)
    scope = (f"median over {len(results)} documents of ≤ {SMALL_PAGES} pages "
             f"({', '.join(sorted({r.file.kind for r in results}))})")
    worst = max(results, key=lambda r: r.ours / r.listener)
    details = {"documents": [
        {"file": r.file.name, "pages": r.pages, "docmill_s": r.ours, "listener_s": r.listener,
         "listener_close_s": r.listener_close, "cold_s": r.cold} for r in results
    ], "pool_start_s": pool_seconds}
    return [
        Row(section="office", level="op", name="Office→PDF, per small document", unit="ms",
            docmill=ours * 1000, reference=listener * 1000,
            tool="warm listener, UNO load+store",
            target=at_most(4, "ratio", 1.2, "≤ 1.2× ref"), runs=runs_label(ctx.runs),
            note=f"{scope}; worst {worst.file.name} at {worst.ours / worst.listener:.2f}×; "
                 f"the listener's close, not in its figure, takes a median "
                 f"{statistics.median(r.listener_close for r in results) * 1000:.1f} ms; "
                 f"docmill's pool started in {pool_seconds:.1f} s",
            details=details),
        Row(section="office", level="op", name="Office→PDF, per small document", unit="ms",
            docmill=ours * 1000, reference=cold * 1000,
            tool="cold soffice --convert-to pdf",
            target=at_most(4, "ratio", 0.2, "≥ 5× faster (≤ 0.2×)"),
            runs=runs_label(ctx.runs, ctx.heavy_runs), note="fresh profile every run"),
    ]


# -- the batch -------------------------------------------------------------------------


def _batch(files: list[Path], workers: list[Callable[[Path], object]]) -> float:
    """Seconds to convert `files`, each worker taking the next file as it gets free."""
    pending: queue.Queue[Path] = queue.Queue()
    for path in files:
        pending.put(path)
    failures: list[BaseException] = []

    def drain(convert: Callable[[Path], object]) -> None:
        while True:
            try:
                path = pending.get_nowait()
            except queue.Empty:
                return
            try:
                convert(path)
            except Exception as error:  # reported after the batch
                failures.append(error)

    threads = [threading.Thread(target=drain, args=(convert,)) for convert in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"batch conversion failed: {failures[0]}")
    return time.perf_counter() - started


def _batch_rows(ctx: Context, documents: list[CorpusFile],
                listeners: list[Listener]) -> list[Row]:
    count = QUICK_BATCH if ctx.quick else BATCH
    log(f".. office: batch of {count}, 2 at a time")
    files = list(itertools.islice(itertools.cycle(item.path for item in documents), count))
    server = ctx.server()
    urls = {path: upload(server, path) for path in set(files)}
    sessions = [requests.Session() for _ in range(2)]
    requests_made: list[TracedSyncRequest] = []

    def through_docmill(session: requests.Session) -> Callable[[Path], object]:
        traced = {path: TracedSyncRequest(session, f"{server.url}/v1/pdf/convert/from/doc",
                                          {"url": url}) for path, url in urls.items()}
        requests_made.extend(traced.values())
        return lambda path: traced[path]()

    def through_listener(listener: Listener, number: int) -> Callable[[Path], object]:
        folder = ctx.fresh_dir(f"batch-{number}")
        return lambda path: listener.convert(path, folder / f"{path.stem}.pdf")

    ours = [through_docmill(session) for session in sessions]
    theirs = [through_listener(listener, n) for n, listener in enumerate(listeners)]
    timings = measure_alternating([lambda: _batch(files, ours), lambda: _batch(files, theirs)],
                                  [ctx.heavy_runs, ctx.heavy_runs])
    phases = request_phases(server.data_dir, [call for traced in requests_made
                                              for call in traced.calls])
    return [Row(
        section="office", level="http", name=f"Office→PDF batch of {count}, 2 at a time",
        unit="files/min", docmill=count / timings[0].median * 60,
        reference=count / timings[1].median * 60, tool="2 warm listeners side by side",
        target=at_least(4, "ratio", 1.0, "≥ 1.0× ref"), runs=runs_label(ctx.heavy_runs),
        note=f"docmill: sync requests from 2 clients to a server with 2 workers; "
             f"{phases_note(phases)}",
        details={"phases_ms": phases},
    )]
