"""Limits with clear errors: upload size (413), a full queue (429), absurd parameter values
(454/450/444/413), never a 500.

Upload and queue limits run on a small server of their own (1 MiB uploads, a queue of one
job, no workers so that the queued job stays queued); parameters on the session server.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import CORPUS, RunningServer, start_server, stop_server, upload

LIMIT_MB = 1
TOO_BIG = b"%PDF-1.4\n" + bytes(LIMIT_MB * 1024 * 1024 + 1000)
SMALL_PDF = CORPUS / "pdfsamples__crazyones-pdfa.pdf"
TEXT_PDF = CORPUS / "pdfjs__tracemonkey.pdf"  # 14 pages


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("limits"), workers=0, extra_args=["--no-workers"],
        extra_env={"DOCMILL_MAX_UPLOAD_MB": str(LIMIT_MB), "DOCMILL_MAX_QUEUE": "1"},
        wait_ready=False,
    )
    yield running
    stop_server(running)


def assert_error(answer: requests.Response, code: int) -> None:
    assert answer.status_code == code, answer.text
    body = answer.json()
    assert body["error"] is True and body["status"] == code and body["message"]


def presigned(server: RunningServer) -> str:
    return requests.get(f"{server.url}/file/upload/get-presigned-url",
                        params={"name": "big.pdf"}, timeout=10).json()["presignedUrl"]


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_put_over_the_limit_is_413(small_server: RunningServer) -> None:
    assert_error(requests.put(presigned(small_server), data=TOO_BIG, timeout=30), 413)


def test_chunked_put_over_the_limit_is_413(small_server: RunningServer) -> None:
    # No Content-Length: the limit is enforced while the body streams in.
    answer = requests.put(presigned(small_server), data=_chunks(TOO_BIG), timeout=30)
    assert_error(answer, 413)


def test_multipart_put_over_the_limit_is_413(small_server: RunningServer) -> None:
    answer = requests.put(presigned(small_server), files={"file": ("big.pdf", TOO_BIG)},
                          timeout=30)
    assert_error(answer, 413)


def test_multipart_upload_over_the_limit_is_413(small_server: RunningServer) -> None:
    answer = requests.post(f"{small_server.url}/v1/file/upload",
                           files={"file": ("big.pdf", TOO_BIG)}, timeout=30)
    assert_error(answer, 413)


def test_base64_upload_over_the_limit_is_413(small_server: RunningServer) -> None:
    data = base64.b64encode(TOO_BIG).decode()
    answer = requests.post(f"{small_server.url}/v1/file/upload/base64",
                           json={"file": data, "name": "big.pdf"}, timeout=30)
    assert_error(answer, 413)


def test_upload_under_the_limit_still_works(small_server: RunningServer) -> None:
    url = upload(small_server, SMALL_PDF)
    assert requests.get(url, timeout=10).content == SMALL_PDF.read_bytes()


def test_full_queue_is_429(small_server: RunningServer) -> None:
    url = upload(small_server, SMALL_PDF)
    first = requests.post(f"{small_server.url}/pdf/convert/to/text",
                          json={"url": url, "async": True}, timeout=10)
    assert first.status_code == 200, first.text  # queued: no worker takes it
    second = requests.post(f"{small_server.url}/pdf/convert/to/text",
                           json={"url": url, "async": True}, timeout=10)
    assert_error(second, 429)
    assert "queue" in second.json()["message"]


# -- absurd parameter values, on the session server ------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_parameter_body_is_413(server, chunked: bool) -> None:
    body = b'{"url": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    answer = requests.post(f"{server.url}/pdf/convert/to/text", timeout=30,
                           data=_chunks(body) if chunked else body,
                           headers={"content-type": "application/json"})
    assert_error(answer, 413)

ABSURD = [
    ({"expiration": -5}, 454),
    ({"expiration": 0}, 454),
    ({"expiration": 10**15}, 454),
    ({"expiration": "soon"}, 454),
    ({"expiration": "1e9"}, 454),
    ({"expiration": [1, 2]}, 454),
    ({"pages": "1--2"}, 450),
    ({"pages": "0.5"}, 450),
    ({"pages": "99999999999999999999999"}, 450),
    ({"pages": "0-99999999"}, 450),
    ({"pages": "!999"}, 450),
    ({"pages": "5-2"}, 450),
    ({"pages": ",,,"}, 450),
    ({"pages": "0-," * 1000}, 413),  # 14 000 pages: over DOCMILL_MAX_PAGES
    ({"pages": ["0"]}, 454),
    ({"profiles": "[1, 2]"}, 444),
    ({"profiles": "123"}, 444),
    ({"profiles": "[" * 5000}, 444),
    ({"profiles": '{"a":' * 5000}, 444),
    ({"async": "maybe"}, 454),
    ({"inline": {"x": 1}}, 454),
    ({"url": "javascript:alert(1)"}, 452),
    ({"url": "http://" + "a" * 70000}, 400),
]


def _outcome(server: RunningServer, params: dict) -> tuple[int, str]:
    """The error code of a sync request, or of its job when the worker finds the error."""
    answer = requests.post(f"{server.url}/pdf/convert/to/text", json=params, timeout=120)
    if answer.status_code != 200:
        assert answer.json()["status"] == answer.status_code
        return answer.status_code, answer.json()["message"]
    return 200, ""


@pytest.fixture(scope="module")
def text_pdf_url(server: RunningServer) -> str:
    return upload(server, TEXT_PDF)


@pytest.mark.parametrize(("params", "code"), ABSURD, ids=[str(p)[:40] for p, _ in ABSURD])
def test_absurd_parameter_values(server, text_pdf_url: str, params: dict, code: int) -> None:
    status, message = _outcome(server, {"url": text_pdf_url, **params})
    assert status == code, message
    assert message and "Internal" not in message


def test_absurd_png_resolution_is_454_or_clamped(server, text_pdf_url: str) -> None:
    for resolution, code in (("huge", 454), ("NaN", 454), (-5, 200), (10**9, 200)):
        answer = requests.post(
            f"{server.url}/pdf/convert/to/png", timeout=120,
            json={"url": text_pdf_url, "pages": "0", "profiles": {"Resolution": resolution}},
        )
        assert answer.status_code == code, (resolution, answer.text)


def test_deeply_nested_json_body_is_not_a_500(server) -> None:
    started = time.monotonic()
    answer = requests.post(f"{server.url}/pdf/convert/to/text", data="[" * 100_000,
                           headers={"content-type": "application/json"}, timeout=30)
    assert answer.status_code == 446, answer.text  # not JSON: read as a form with no 'url'
    assert time.monotonic() - started < 10
