"""API keys: `x-api-key` checked in constant time; no keys configured means open access."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from docmill.errors import AuthError


def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries one of the configured keys."""
    keys: list[str] = request.app.state.services.settings.api_key_list
    if not keys:
        return
    given = request.headers.get("x-api-key", "")
    # Compare against every key so the time taken does not reveal which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.encode())
    if not matched:
        raise AuthError()
