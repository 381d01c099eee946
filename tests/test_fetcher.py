"""The guarded URL fetcher: private addresses, schemes, redirects, size limits."""

import http.server
import threading

import pytest

from docmill.errors import ForbiddenURLError, InputURLError, InvalidURLError, TooLargeError
from docmill.inputs.fetcher import FetchPolicy, fetch_to_file, is_forbidden_address, resolve_target

STRICT = FetchPolicy(allow_private=False, max_bytes=1000, timeout=5)
OPEN = FetchPolicy(allow_private=True, max_bytes=1000, timeout=5)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x", "http://localhost/x", "http://0.0.0.0/x", "http://10.1.2.3/x",
        "http://192.168.0.1/x", "http://172.16.0.1/x", "http://169.254.169.254/latest",
        "http://[::1]/x", "http://[::ffff:127.0.0.1]/x", "http://2130706433/x",
        "http://0177.0.0.1/x", "http://0x7f.0.0.1/x", "http://metadata.google.internal/x",
        "http://[fe80::1]/x", "http://100.64.0.1/x",
    ],
)
def test_private_addresses_refused(url):
    with pytest.raises((ForbiddenURLError, InputURLError)) as caught:
        resolve_target(url, allow_private=False)
    if "metadata" not in url:
        assert caught.value.status == 403


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "gopher://x", "nonsense", ""])
def test_non_http_schemes_refused(url):
    with pytest.raises(InvalidURLError):
        resolve_target(url, allow_private=False)


def test_public_addresses_allowed():
    assert not is_forbidden_address("8.8.8.8")
    assert is_forbidden_address("::ffff:10.0.0.1")


def test_connects_to_the_checked_address():
    target = resolve_target("http://localhost:8000/a?b=1", allow_private=True)
    assert target.url.startswith(("http://127.0.0.1:8000/a?b=1", "http://[::1]:8000/a?b=1"))
    assert target.host_header == "localhost:8000"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/redirect-private":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/secret")
            self.end_headers()
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif self.path == "/ok":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_http():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_ok_404_size_limit(local_http, tmp_path):
    target = tmp_path / "f"
    assert fetch_to_file(f"{local_http}/ok", target, OPEN) == "ok"
    assert target.read_bytes() == b"hello"
    with pytest.raises(InputURLError):
        fetch_to_file(f"{local_http}/missing", target, OPEN)
    with pytest.raises(TooLargeError):
        fetch_to_file(f"{local_http}/big", target, OPEN)


def test_loopback_refused_without_permission(local_http, tmp_path):
    with pytest.raises(ForbiddenURLError):
        fetch_to_file(f"{local_http}/ok", tmp_path / "f", STRICT)


def test_unreachable_host(tmp_path):
    with pytest.raises(InputURLError):
        fetch_to_file("http://127.0.0.1:1/x", tmp_path / "f", OPEN)


# -- every redirect hop is checked again ----------------------------------------------------


class _Redirector(http.server.BaseHTTPRequestHandler):
    """`/to?<location>` answers 302 to `<location>`; `/loop` redirects to itself."""

    def do_GET(self):  # noqa: N802
        if self.path == "/ok":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"fine")
            return
        location = self.path if self.path == "/loop" else self.path.partition("?")[2]
        self.send_response(302)
        self.send_header("Location", location)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def first_hop_only(monkeypatch):
    """A strict policy under which only 127.0.0.1 (the test server, the first hop) is allowed."""
    real = is_forbidden_address
    monkeypatch.setattr("docmill.inputs.fetcher.is_forbidden_address",
                        lambda address: address != "127.0.0.1" and real(address))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("http://169.254.169.254/latest/meta-data/", ForbiddenURLError),
        ("http://10.0.0.1/secret", ForbiddenURLError),
        ("http://[::1]:80/x", ForbiddenURLError),
        ("http://metadata.google.internal/x", ForbiddenURLError),
        ("file:///etc/passwd", InvalidURLError),
        ("gopher://127.0.0.1:25/x", InvalidURLError),
    ],
)
def test_each_redirect_hop_is_checked(first_hop_only, tmp_path, location, error):
    assert fetch_to_file(f"{first_hop_only}/ok", tmp_path / "f", STRICT) == "ok"
    with pytest.raises(error):
        fetch_to_file(f"{first_hop_only}/to?{location}", tmp_path / "f", STRICT)


def test_redirect_loop_ends(first_hop_only, tmp_path):
    with pytest.raises(InputURLError, match="redirects"):
        fetch_to_file(f"{first_hop_only}/loop", tmp_path / "f", STRICT)
