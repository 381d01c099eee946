"""Local-directory storage: `<data>/files/<file id>/<name>`, served by docmill itself.

Each file directory holds a `.meta.json` with the expiry; the sweeper deletes what expired.
Writes go to a temporary name and are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from docmill.errors import InputURLError, StorageError
from docmill.storage.base import MISSING_INPUT_MESSAGE, OwnLink, Storage
from docmill.storage.signing import check_token, make_token

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
# GET links: /files/<id>/<token>/<name>; PUT links: /uploads/<id>/<token>/<name>
OWN_PATH = re.compile(
    r"^(?:/v1)?/(?P<kind>files|uploads)/(?P<id>[0-9a-f]{32})/(?P<token>[0-9]+\.[A-Za-z0-9_-]+)"
    r"/(?P<name>[A-Za-z0-9._-]+)$"
)
META = ".meta.json"


def new_file_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class OwnFile:
    """A file link docmill issued, parsed from its URL."""

    kind: str  # "files" (GET) or "uploads" (PUT)
    file_id: str
    token: str
    name: str


def parse_own_url(url: str) -> OwnFile | None:
    """Recognise a link docmill issued (any host: the path and signature identify it)."""
    path = unquote(urlsplit(url.strip()).path)
    match = OWN_PATH.match(path)
    if not match:
        return None
    return OwnFile(match["kind"], match["id"], match["token"], match["name"])


class LocalStorage(Storage):
    backend = "local"

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.secret = secret
        self.root.mkdir(parents=True, exist_ok=True)

    def new_file_id(self, expires_at: float) -> str:
        return new_file_id()

    # -- links ---------------------------------------------------------------------------
    def file_url(self, base_url: str, file_id: str, name: str, expires_at: float) -> str:
        token = make_token(self.secret, "get", file_id, name, expires_at)
        return f"{base_url.rstrip('/')}/files/{file_id}/{token}/{name}"

    def upload_url(self, base_url: str, file_id: str, name: str, expires_at: float) -> str:
        token = make_token(self.secret, "put", file_id, name, expires_at)
        return f"{base_url.rstrip('/')}/uploads/{file_id}/{token}/{name}"

    def check_link(self, link: OwnFile) -> str | None:
        """None if the link's signature is valid and unexpired, else why not."""
        action = "get" if link.kind == "files" else "put"
        return check_token(self.secret, action, link.file_id, link.name, link.token)

    def parse_link(self, url: str) -> OwnLink | None:
        link = parse_own_url(url)
        if link is None:
            return None
        return OwnLink(link.file_id, link.name, self.check_link(link))

    # -- files ---------------------------------------------------------------------------
    def path_of(self, file_id: str, name: str) -> Path:
        if not FILE_ID.match(file_id) or not SAFE_NAME.match(name):
            raise ValueError("invalid file id or name")
        return self.root / file_id / name

    def existing_path(self, file_id: str, name: str) -> Path | None:
        """The file's path if it is stored and has not expired."""
        try:
            path = self.path_of(file_id, name)
        except ValueError:
            return None
        if not path.is_file() or self._expired(path.parent):
            return None
        return path

    def find_single(self, file_id: str) -> Path | None:
        """The one file stored under `file_id` (for `filetoken://<id>` inputs)."""
        if not FILE_ID.match(file_id):
            return None
        folder = self.root / file_id
        if not folder.is_dir() or self._expired(folder):
            return None
        names = sorted(p for p in folder.iterdir() if p.is_file() and p.name != META)
        return names[0] if names else None

    def single_file_name(self, file_id: str) -> str | None:
        path = self.find_single(file_id)
        return path.name if path else None

    def copy_to(self, file_id: str, name: str, target: Path, max_bytes: int) -> Path:
        source = self.existing_path(file_id, name)
        if source is None:
            raise InputURLError(MISSING_INPUT_MESSAGE)
        # A hard link is instant and keeps the input alive even if the sweeper removes it.
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        return target

    def check(self) -> dict[str, Any]:
        return {"backend": self.backend, "ok": os.access(self.root, os.W_OK)}

    def reserve(self, file_id: str, expires_at: float) -> None:
        """Note a file's expiry before its bytes arrive (a presigned upload)."""
        folder = self.root / file_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._write_meta(folder, expires_at)
        except OSError as exc:
            raise StorageError(f"Could not store the file: {exc.strerror or exc}.") from exc

    def expiry_of(self, file_id: str) -> float | None:
        return self._read_expiry(self.root / file_id) if FILE_ID.match(file_id) else None

    def save_file(self, file_id: str, name: str, source: Path, expires_at: float) -> None:
        """Move (or copy) `source` into storage atomically."""
        target = self.path_of(file_id, name)
        temporary = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write_meta(target.parent, expires_at)
            try:
                os.rename(source, temporary)
            except OSError:  # another file system: copy, still under a temporary name
                shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)  # never leave half a file behind
            raise StorageError(f"Could not store the file: {exc.strerror or exc}.") from exc

    def save_bytes(self, file_id: str, name: str, data: bytes, expires_at: float) -> None:
        target = self.path_of(file_id, name)
        temporary = self.root / f".{file_id}.{uuid.uuid4().hex[:8]}.part"
        try:
            temporary.write_bytes(data)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StorageError(f"Could not store the file: {exc.strerror or exc}.") from exc
        self.save_file(file_id, target.name, temporary, expires_at)

    def temporary_upload_path(self, file_id: str) -> Path:
        """Where a streamed upload is written before `save_file` moves it into place."""
        return self.root / f".{file_id}.{uuid.uuid4().hex[:8]}.part"

    def delete(self, file_id: str) -> bool:
        if not FILE_ID.match(file_id):
            return False
        folder = self.root / file_id
        if not folder.is_dir():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def sweep(self, now: float | None = None) -> int:
        """Delete every expired file directory and stale partial upload; return how many."""
        now = time.time() if now is None else now
        removed = 0
        for entry in self.root.iterdir():
            if entry.is_dir() and self._expired(entry, now):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
            elif entry.name.endswith(".part") and _older_than(entry, now, 24 * 3600):
                entry.unlink(missing_ok=True)
        return removed

    # -- expiry metadata -----------------------------------------------------------------
    def _write_meta(self, folder: Path, expires_at: float) -> None:
        meta = folder / META
        current = self._read_expiry(folder)
        if current is not None and current >= expires_at:
            return
        temporary = folder / f"{META}.{uuid.uuid4().hex[:8]}"
        temporary.write_text(json.dumps({"expires": expires_at}))
        os.replace(temporary, meta)

    def _read_expiry(self, folder: Path) -> float | None:
        try:
            return float(json.loads((folder / META).read_text())["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _expired(self, folder: Path, now: float | None = None) -> bool:
        expiry = self._read_expiry(folder)
        if expiry is None:
            # A folder without metadata is only being created; treat it as expired after a day.
            return _older_than(folder, now or time.time(), 24 * 3600)
        return expiry < (time.time() if now is None else now)


def _older_than(path: Path, now: float, seconds: float) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime < now - seconds
    return False
