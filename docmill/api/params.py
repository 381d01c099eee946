"""Lenient request parsing, as real PDF.co clients send requests.

Parameters come from the query string, a JSON body (with or without a Content-Type, maybe
double-encoded as a JSON string), a form body or multipart; names match case-insensitively.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from docmill.errors import InvalidParametersError, TooLargeError

_ALIASES = {"profile": "profiles"}  # some clients send `profile`
# Parameters are small (a list of a thousand URLs fits in far less): a bigger body is refused
# before it is read into memory.
MAX_PARAMS_BYTES = 4 * 1024 * 1024


async def request_params(request: Request, max_bytes: int = MAX_PARAMS_BYTES) -> dict[str, Any]:
    """Every parameter of the request, keys lower-cased; the body wins over the query.

    A body larger than `max_bytes` is 413.
    """
    params: dict[str, Any] = {}
    for key, value in parse_qsl(request.url.query, keep_blank_values=True):
        params[_canonical(key)] = value
    params.update(await _body_params(request, max_bytes))
    return params


async def _body_params(request: Request, max_bytes: int) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=max_bytes)
        return {_canonical(k): v for k, v in form.items() if isinstance(v, str)}
    body = await _read_body(request, max_bytes)
    if not body.strip():
        return {}
    decoded = _parse_json_body(body)
    if decoded is not None:
        return {_canonical(k): v for k, v in decoded.items()}
    text = body.decode("utf-8", errors="replace")
    return {_canonical(k): v for k, v in parse_qsl(text, keep_blank_values=True)}


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, read in chunks so that a chunked upload cannot pass the limit."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> TooLargeError:
    return TooLargeError(
        f"The request body is larger than {max_bytes} bytes: parameters are small, and files "
        "are uploaded with /file/upload or a presigned URL."
    )


def _parse_json_body(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    if isinstance(value, str):  # double-encoded: a JSON string holding the JSON object
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _canonical(key: str) -> str:
    lowered = key.strip().lower()
    return _ALIASES.get(lowered, lowered)


def validate_params(model: type[BaseModel], raw: dict[str, Any]) -> BaseModel:
    """Build the op's parameter model from raw params, matching field names case-insensitively."""
    by_lower = {}
    for name, info in model.model_fields.items():
        by_lower[(info.alias or name).lower()] = info.alias or name
    data = {by_lower[key]: value for key, value in raw.items() if key in by_lower}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "parameters"
        raise InvalidParametersError(
            f"Invalid value for parameter '{field}': {first['msg']}."
        ) from error
