"""Where files live (uploads and results) and the signed URLs that reach them."""

from __future__ import annotations

from docmill.config import Settings
from docmill.storage.base import OwnLink, Storage
from docmill.storage.local import LocalStorage, OwnFile

__all__ = ["LocalStorage", "OwnFile", "OwnLink", "Storage", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    """The storage the settings ask for: S3 for an `s3://` URL, else the data directory."""
    if settings.storage:
        from docmill.storage.s3 import S3Storage

        return S3Storage(settings.storage, settings.data_dir / "tmp")
    return LocalStorage(settings.data_dir / "files", settings.signing_secret())
