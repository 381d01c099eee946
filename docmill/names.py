"""Output file names: whatever a client sends, a safe plain file name comes out.

A Windows-minded client sends `.\\result.pdf`; that becomes `result.pdf`. Names also end up
inside URLs that clients paste into query strings unencoded, so they hold no `&`, `#`,
`,`, `+`, `%`, `?` or spaces.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_LENGTH = 120


def sanitize_name(name: str | None, default_stem: str, extension: str) -> str:
    """Return a safe file name ending in `.extension` (without the dot)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._-")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem.strip("._-") or default_stem
    stem = stem[: MAX_NAME_LENGTH - len(extension) - 1]
    if ext.lower() != extension.lower():
        return f"{stem}.{extension}"
    return f"{stem}.{ext}"


def sanitize_file_name(name: str | None, default: str = "file") -> str:
    """A safe file name that keeps whatever extension the client gave (for uploads)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._-")
    return base[-MAX_NAME_LENGTH:].lstrip("._-") or default
