"""A full data disk: clear 507 envelopes, no corrupt or partial files, the server lives on.

The server's file store is a 3 MiB tmpfs mounted for the test (skipped where mounting is
not allowed); the job table and queue stay on the normal disk.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import CORPUS, start_server, stop_server, upload, wait_for_job

SMALL_PDF = CORPUS / "pdfsamples__crazyones-pdfa.pdf"  # 16 KB
BIG_PDF = CORPUS / "pdfsamples__GeoTopo-komprimiert.pdf"  # 1.8 MB, 117 pages


@pytest.fixture
def full_disk_server(tmp_path):
    files = tmp_path / "data" / "files"
    files.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(files)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    server = start_server(tmp_path / "data", workers=1)
    try:
        yield server
    finally:
        stop_server(server)
        subprocess.run(["umount", "-l", str(files)], check=False)


def partial_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.endswith(".part")]


def test_full_disk_gives_507_and_leaves_nothing_half_written(full_disk_server):
    server = full_disk_server
    small = upload(server, SMALL_PDF)
    big = BIG_PDF.read_bytes()
    urls = requests.get(f"{server.url}/file/upload/get-presigned-url?name=big.pdf",
                        timeout=10).json()
    first = requests.put(urls["presignedUrl"], data=big, timeout=60)
    second_urls = requests.get(f"{server.url}/file/upload/get-presigned-url?name=b2.pdf",
                               timeout=10).json()
    second = requests.put(second_urls["presignedUrl"], data=big, timeout=60)
    refused = [answer for answer in (first, second) if answer.status_code != 200]
    assert refused, "two 1.8 MB uploads cannot both fit in 3 MiB"
    for answer in refused:
        assert answer.status_code == 507 and answer.json()["error"] is True
    assert requests.get(second_urls["url"], timeout=10).status_code in (200, 404)

    # A job whose results do not fit fails with 507; no half-written result is served.
    job = requests.post(server.url + "/pdf/convert/to/png",
                        json={"url": urls["url"] if first.status_code == 200 else small,
                              "async": True, "profiles": {"Resolution": 300}}, timeout=30)
    job_id = job.json()["jobId"]
    status = wait_for_job(server.url, job_id, timeout=120)
    if status["status"] == "failed":
        assert status["errorCode"] == 507, status
    assert not partial_files(server.data_dir / "files")
    # The server and its workers live on.
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    assert requests.get(small, timeout=10).status_code == 200
