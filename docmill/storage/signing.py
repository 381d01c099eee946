"""Signed, expiring file links: the signature and expiry live in the URL path.

Clients paste our URLs into unencoded query strings, so a token is `<expiry>.<signature>`
in URL-safe base64 without padding: no `&`, `#`, `,`, `+` or spaces anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def make_token(secret: bytes, action: str, file_id: str, name: str, expires_at: float) -> str:
    expiry = int(expires_at)
    return f"{expiry}.{_signature(secret, action, file_id, name, expiry)}"


def check_token(secret: bytes, action: str, file_id: str, name: str, token: str) -> str | None:
    """Return None if the token is valid now, else the reason it is refused."""
    expiry_text, _, signature = token.partition(".")
    if not (expiry_text.isascii() and expiry_text.isdigit()) or not signature:
        return "malformed link"
    expected = _signature(secret, action, file_id, name, int(expiry_text))
    if not hmac.compare_digest(expected, signature):
        return "invalid link signature"
    if int(expiry_text) < time.time():
        return "link expired"
    return None


def _signature(secret: bytes, action: str, file_id: str, name: str, expiry: int) -> str:
    message = f"{action}\n{file_id}\n{name}\n{expiry}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
