"""Shared fixtures: the corpus of real documents and its manifest."""

from __future__ import annotations

import csv
import functools
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DOCMILL_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_manifest() -> list[dict[str, str]]:
    """Rows of MANIFEST.tsv: file, kind, pages, note..."""
    with open(CORPUS / "MANIFEST.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def manifest_password(row: dict[str, str]) -> str:
    """The password an encrypted corpus PDF's manifest note gives ("pw=..."), else ""."""
    match = re.search(r"\bpw=(\S+)", row.get("note", ""))
    return match.group(1) if match else ""


def pdf_text(path: Path) -> str:
    """The plain text of every page of a PDF, by PDFium (to check what a conversion made)."""
    document = pdfium.PdfDocument(str(path))
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def page_count(path: Path) -> int:
    document = pdfium.PdfDocument(str(path))
    try:
        return len(document)
    finally:
        document.close()


def corpus_files(kind_prefix: str) -> list[Path]:
    """Corpus files whose manifest kind starts with `kind_prefix` ('pdf', 'image/', 'doc'...)."""
    rows = corpus_manifest()
    return [CORPUS / row["file"] for row in rows if row["kind"].startswith(kind_prefix)]


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"corpus not found at {CORPUS}; set DOCMILL_CORPUS")
    return CORPUS


# -- a real docmill server, started once per test session -----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    data_dir: Path, workers: int = 2, extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None, wait_ready: bool = True, port: int | None = None,
) -> RunningServer:
    """Start `docmill serve` as a real subprocess and wait until /health answers 200."""
    port = port or free_port()
    env = {**os.environ, "DOCMILL_ALLOW_PRIVATE_URLS": "1", "DOCMILL_LEASE_SECONDS": "6",
           **(extra_env or {})}
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with open(log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "docmill", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--data-dir", str(data_dir), "--workers", str(workers),
             *(extra_args or [])],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    deadline = time.monotonic() + 120
    expected = 200 if wait_ready else (200, 503)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docmill exited early:\n{server.log()}")
        try:
            status = requests.get(server.url + "/health", timeout=2).status_code
            if status == expected or (isinstance(expected, tuple) and status in expected):
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"docmill did not become ready:\n{server.log()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("docmill-data"))
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def static_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain HTTP server on loopback serving the corpus (stands in for demo-file URLs)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(CORPUS))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def wait_for_job(api_url: str, job_id: str, timeout: float = 180) -> dict:
    """Poll /job/check until the job is no longer working; return the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(api_url + "/job/check", params={"jobid": job_id}, timeout=10).json()
        if status["status"] != "working":
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still working after {timeout} s")


def upload(server: RunningServer, path: Path, name: str | None = None) -> str:
    """Upload a file the way the vendor's clients do: presigned URL, then PUT."""
    answer = requests.get(
        f"{server.url}/v1/file/upload/get-presigned-url",
        params={"name": name or path.name, "contenttype": "application/octet-stream"},
        timeout=10,
    ).json()
    with open(path, "rb") as handle:
        put = requests.put(answer["presignedUrl"], data=handle,
                           headers={"content-type": "application/octet-stream"}, timeout=60)
    assert put.status_code == 200, put.text
    return answer["url"]


# -- real backends of the distributed mode (Redis, S3), started once per test session -------


@pytest.fixture(scope="session")
def redis_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real redis-server on a free loopback port."""
    from tests.cluster import start_redis

    backend = start_redis(tmp_path_factory.mktemp("redis"))
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def s3_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """moto's S3-compatible server on a free loopback port, with a bucket."""
    from tests.cluster import start_s3

    backend = start_s3(tmp_path_factory.mktemp("s3"))
    yield backend
    backend.stop()
