"""Lenient parsing of the `profiles` parameter.

Clients send JSON, JavaScript-like text with single quotes (`{ 'JPEGQuality': 25 }`),
unquoted keys, or an already-parsed object. Anything that is not an object is error 444.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from docmill.errors import ProfilesError

_UNQUOTED_KEY = re.compile(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*:)")
_JS_LITERALS = {"true": "True", "false": "False", "null": "None"}


def parse_profiles(raw: Any) -> dict[str, Any]:
    """Parse `profiles` into a dict; empty input gives an empty dict."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise ProfilesError(f"Could not parse 'profiles': expected an object, got {raw!r}.")
    text = raw.strip()
    if not text:
        return {}
    for parse in (_parse_json, _parse_python_literal, _parse_javascript_like):
        value = parse(text)
        if isinstance(value, str):
            # Double-encoded: a JSON string that holds the object.
            return parse_profiles(value)
        if isinstance(value, dict):
            return value
    raise ProfilesError(
        "Could not parse 'profiles': send a JSON object such as {\"JPEGQuality\": 25}."
    )


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than ~1000 levels
        return None


def _parse_python_literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _parse_javascript_like(text: str) -> Any:
    quoted = _UNQUOTED_KEY.sub(r'\1"\2"\3', text)
    literal = re.sub(
        r"\b(true|false|null)\b", lambda m: _JS_LITERALS[m.group(1)], quoted
    )
    return _parse_python_literal(literal)


def profile_value(profiles: dict[str, Any], name: str, default: Any = None) -> Any:
    """Look a profile option up by name, ignoring case as the vendor does."""
    wanted = name.lower()
    for key, value in profiles.items():
        if key.lower() == wanted:
            return value
    return default
