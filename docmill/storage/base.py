"""The storage interface: what the API, the workers and the sweeper need from a file store.

A stored file is named by a file id (32 lowercase hex digits) and a sanitised name; its
links (`file_url`, `upload_url`) are what clients see. `LocalStorage` keeps files under the
data directory and signs its own links; `S3Storage` keeps them in a bucket and hands out the
bucket's own presigned URLs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING_INPUT_MESSAGE = (
    "The input file was not found: it was never uploaded, or it expired or was deleted."
)


@dataclass(frozen=True)
class OwnLink:
    """A link this storage issued, recognised in a URL a client sent back."""

    file_id: str
    name: str
    problem: str | None  # None if valid; "link expired"; or why the link is refused


class Storage(abc.ABC):
    backend: str

    @abc.abstractmethod
    def new_file_id(self, expires_at: float) -> str:
        """A fresh file id for a file that lives until `expires_at`."""

    # -- links ---------------------------------------------------------------------------
    @abc.abstractmethod
    def file_url(self, base_url: str, file_id: str, name: str, expires_at: float) -> str:
        """A GET link to the file, valid until `expires_at` (it may not exist yet)."""

    @abc.abstractmethod
    def upload_url(self, base_url: str, file_id: str, name: str, expires_at: float) -> str:
        """A PUT link a client sends the file's bytes to, valid until `expires_at`."""

    @abc.abstractmethod
    def parse_link(self, url: str) -> OwnLink | None:
        """The file behind a link this storage issued; None if `url` is not one of ours."""

    # -- files ---------------------------------------------------------------------------
    @abc.abstractmethod
    def reserve(self, file_id: str, expires_at: float) -> None:
        """Note a file's expiry before its bytes arrive (a presigned upload)."""

    @abc.abstractmethod
    def save_file(self, file_id: str, name: str, source: Path, expires_at: float) -> None:
        """Store the file at `source` (the caller may not use `source` afterwards)."""

    @abc.abstractmethod
    def save_bytes(self, file_id: str, name: str, data: bytes, expires_at: float) -> None: ...

    @abc.abstractmethod
    def copy_to(self, file_id: str, name: str, target: Path, max_bytes: int) -> Path:
        """Bring a stored file to the local path `target`; InputURLError if it is gone."""

    @abc.abstractmethod
    def single_file_name(self, file_id: str) -> str | None:
        """The name of the one file stored under `file_id` (for `filetoken://<id>`)."""

    @abc.abstractmethod
    def temporary_upload_path(self, file_id: str) -> Path:
        """A local path where an upload is written before `save_file` stores it."""

    @abc.abstractmethod
    def delete(self, file_id: str) -> bool: ...

    @abc.abstractmethod
    def sweep(self, now: float | None = None) -> int:
        """Delete what expired; return how many file ids were removed."""

    # -- health --------------------------------------------------------------------------
    @abc.abstractmethod
    def check(self) -> dict[str, Any]:
        """{"backend": ..., "ok": bool, ...}: whether the store can be reached."""
