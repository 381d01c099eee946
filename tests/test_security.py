"""Security through a real server: callback webhooks go through the URL guard, and API keys
and input-URL passwords never reach the log.
"""

from __future__ import annotations

import http.server
import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from docmill.errors import ForbiddenURLError, InvalidURLError
from docmill.inputs.fetcher import FetchPolicy, post_json
from tests.conftest import CORPUS, RunningServer, start_server, stop_server, upload

SMALL_PDF = CORPUS / "pdfsamples__crazyones-pdfa.pdf"
STRICT = FetchPolicy(allow_private=False, max_bytes=1000, timeout=5)
KEY = "k3y-that-must-never-be-logged-7f3a9c"
WRONG_KEY = "wr0ng-key-also-never-logged-51bd02"
HTTP_PASSWORD = "basic-auth-secret-never-logged-c0ffee"


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records each POSTed JSON body on the server's `received` queue."""

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length", "0"))
        self.server.received.put(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, queue.Queue]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.received = queue.Queue()  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", httpd.received  # type: ignore[attr-defined]
    httpd.shutdown()


def test_callback_receives_the_job_result(server: RunningServer, webhook) -> None:
    # The session server runs with DOCMILL_ALLOW_PRIVATE_URLS=1, so loopback is allowed.
    hook_url, received = webhook
    answer = requests.post(f"{server.url}/pdf/convert/to/text", timeout=30, json={
        "url": upload(server, SMALL_PDF), "async": True, "callback": hook_url})
    job_id = answer.json()["jobId"]
    payload = received.get(timeout=60)
    assert payload["jobId"] == job_id and payload["status"] == "success"
    assert payload["url"].startswith("http") and payload["error"] is False


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest",
                                 "http://[::1]/hook", "http://10.0.0.1/hook"])
def test_private_callback_urls_are_refused(url: str) -> None:
    with pytest.raises(ForbiddenURLError):
        post_json(url, {"jobId": "x"}, STRICT)


def test_callback_with_other_scheme_is_refused() -> None:
    with pytest.raises(InvalidURLError):
        post_json("file:///etc/passwd", {"jobId": "x"}, STRICT)


def test_callback_to_a_private_address_is_not_posted(tmp_path: Path, webhook) -> None:
    """A server that does not allow private URLs never calls a loopback webhook."""
    hook_url, received = webhook
    strict = start_server(tmp_path / "data", workers=1,
                          extra_env={"DOCMILL_ALLOW_PRIVATE_URLS": "0"})
    try:
        # The input is the server's own upload (no fetch); only the callback is private.
        answer = requests.post(f"{strict.url}/pdf/convert/to/text", timeout=60, json={
            "url": upload(strict, SMALL_PDF), "callback": hook_url})
        assert answer.status_code == 200, answer.text
        with pytest.raises(queue.Empty):
            received.get(timeout=3)
        assert "refused" in strict.log()
    finally:
        stop_server(strict)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("keyed"), workers=1, extra_env={
        "DOCMILL_API_KEYS": f"other-key,{KEY}", "DOCMILL_LOG_LEVEL": "debug"})
    yield running
    stop_server(running)


def test_keys_and_passwords_never_appear_in_the_log(keyed_server: RunningServer) -> None:
    base = keyed_server.url
    assert requests.get(f"{base}/job/check", params={"jobid": "x"},
                        headers={"x-api-key": WRONG_KEY}, timeout=10).status_code == 401
    headers = {"x-api-key": KEY}
    presigned = requests.get(f"{base}/file/upload/get-presigned-url", headers=headers,
                             params={"name": "a.pdf"}, timeout=10).json()
    assert requests.put(presigned["presignedUrl"], data=SMALL_PDF.read_bytes(),
                        timeout=30).status_code == 200
    requests.post(f"{base}/pdf/convert/to/text", headers=headers, timeout=60,
                  json={"url": presigned["url"], "httpusername": "me",
                        "httppassword": HTTP_PASSWORD}).raise_for_status()
    # An input URL the worker must fetch with basic auth, and fails: the error is logged.
    requests.post(f"{base}/pdf/convert/to/text", headers=headers, timeout=60,
                  json={"url": "http://127.0.0.1:9/x.pdf", "httpusername": "me",
                        "httppassword": HTTP_PASSWORD})
    log = keyed_server.log()
    assert log.strip(), "the server wrote no log at all"
    for secret in (KEY, WRONG_KEY, HTTP_PASSWORD):
        assert secret not in log
