"""Where files live (uploads and results) and the signed URLs that reach them."""

from docmill.storage.local import LocalStorage, OwnFile

__all__ = ["LocalStorage", "OwnFile"]
