"""The one guarded fetcher for URLs supplied by clients (inputs and callback webhooks).

Only http(s); every address a host name resolves to is checked and the request connects
to the very address that was checked (no DNS-rebinding gap: the URL carries the IP, the
Host header and TLS SNI carry the name); redirects are checked again at each hop; the body
is streamed with a size limit and the whole fetch has a time limit.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from docmill.errors import ForbiddenURLError, InputURLError, InvalidURLError, TooLargeError

MAX_REDIRECTS = 5
_METADATA_HOSTS = {"metadata.google.internal", "metadata"}


@dataclass(frozen=True)
class FetchPolicy:
    allow_private: bool = False
    max_bytes: int = 512 * 1024 * 1024
    timeout: float = 60.0


@dataclass(frozen=True)
class _Target:
    url: str  # with the checked IP literal in place of the host name
    host_header: str
    sni_hostname: str | None


def fetch_to_file(
    url: str, destination: Path, policy: FetchPolicy, auth: tuple[str, str] | None = None
) -> str:
    """Download `url` into `destination`; return the final URL's file name (may be empty)."""
    deadline = time.monotonic() + policy.timeout
    current = url
    with httpx.Client(timeout=policy.timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = resolve_target(current, policy.allow_private)
            try:
                with client.stream(
                    "GET",
                    target.url,
                    headers={"Host": target.host_header, "User-Agent": "docmill"},
                    auth=auth,
                    extensions={"sni_hostname": target.sni_hostname}
                    if target.sni_hostname
                    else {},
                ) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise InputURLError(
                            f"Could not fetch the input URL: the server answered HTTP "
                            f"{response.status_code}."
                        )
                    _stream_body(response, destination, policy.max_bytes, deadline)
                    return Path(urlsplit(current).path).name
            except httpx.TimeoutException as exc:
                raise InputURLError("Could not fetch the input URL: it timed out.") from exc
            except httpx.HTTPError as exc:
                raise InputURLError(f"Could not fetch the input URL: {exc}.") from exc
    raise InputURLError(f"Could not fetch the input URL: more than {MAX_REDIRECTS} redirects.")


def post_json(url: str, payload: dict, policy: FetchPolicy) -> int:
    """POST `payload` to a webhook through the same guard; returns the HTTP status."""
    target = resolve_target(url, policy.allow_private)
    with httpx.Client(timeout=policy.timeout, follow_redirects=False, trust_env=False) as client:
        response = client.post(
            target.url,
            json=payload,
            headers={"Host": target.host_header, "User-Agent": "docmill"},
            extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else {},
        )
        return response.status_code


def resolve_target(url: str, allow_private: bool) -> _Target:
    """Check scheme and every resolved address; return the URL rewritten to the IP."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"Invalid URL: {url!r}.") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidURLError(
            f"Invalid URL {url!r}: only http and https URLs (or links docmill issued) work."
        )
    host = parts.hostname
    if not host:
        raise InvalidURLError(f"Invalid URL {url!r}: no host name.")
    if host.lower().rstrip(".") in _METADATA_HOSTS and not allow_private:
        raise ForbiddenURLError(f"Access to {host} is not allowed.")
    port = port or (443 if parts.scheme == "https" else 80)
    address = _first_allowed_address(host, port, allow_private)
    ip_literal = f"[{address}]" if ":" in address else address
    netloc = f"{ip_literal}:{port}"
    default_port = (parts.scheme == "https" and port == 443) or (
        parts.scheme == "http" and port == 80
    )
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
    rewritten = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    sni = host if parts.scheme == "https" and not _is_ip(host) else None
    return _Target(rewritten, host_header, sni)


def _first_allowed_address(host: str, port: int, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputURLError(f"Could not fetch the input URL: host {host!r} not found.") from exc
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(address):
                raise ForbiddenURLError(
                    f"Access to {host} ({address}) is not allowed: it is a private, loopback "
                    "or link-local address. An operator can allow it with "
                    "DOCMILL_ALLOW_PRIVATE_URLS=1."
                )
    return addresses[0]


def is_forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _stream_body(
    response: httpx.Response, destination: Path, max_bytes: int, deadline: float
) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLargeError(f"The input file is larger than the limit of {max_bytes} bytes.")
    written = 0
    with open(destination, "wb") as handle:
        for chunk in response.iter_bytes(1024 * 1024):
            written += len(chunk)
            if written > max_bytes:
                raise TooLargeError(
                    f"The input file is larger than the limit of {max_bytes} bytes."
                )
            if time.monotonic() > deadline:
                raise InputURLError("Could not fetch the input URL: it timed out.")
            handle.write(chunk)
