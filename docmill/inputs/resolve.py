"""Turn the `url` parameter (one URL or a comma list) into local input files for an op."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from docmill.errors import ForbiddenURLError, InputURLError, MissingInputError
from docmill.inputs.fetcher import FetchPolicy, fetch_to_file
from docmill.names import sanitize_file_name
from docmill.storage.local import LocalStorage, parse_own_url

FILETOKEN = "filetoken://"


def split_urls(url_param: str) -> list[str]:
    return [part.strip() for part in (url_param or "").split(",") if part.strip()]


def resolve_inputs(
    url_param: str,
    destination: Path,
    storage: LocalStorage,
    policy: FetchPolicy,
    auth: tuple[str, str] | None = None,
) -> list[Path]:
    """Bring every input into `destination`, in the order given; return their paths."""
    urls = split_urls(url_param)
    if not urls:
        raise MissingInputError()
    destination.mkdir(parents=True, exist_ok=True)
    return [
        _resolve_one(url, destination / f"{index:03d}", storage, policy, auth)
        for index, url in enumerate(urls)
    ]


def input_file_name(url: str) -> str:
    """The file name a URL points at, for default output names."""
    if url.startswith(FILETOKEN):
        return ""
    return Path(unquote(urlsplit(url).path)).name


def _resolve_one(
    url: str,
    folder: Path,
    storage: LocalStorage,
    policy: FetchPolicy,
    auth: tuple[str, str] | None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stored = _stored_file(url, storage)
    if stored is not None:
        return _link_or_copy(stored, folder / stored.name)
    temporary = folder / "download"
    name = fetch_to_file(url, temporary, policy, auth)
    return temporary.rename(folder / sanitize_file_name(name, "input"))


def _stored_file(url: str, storage: LocalStorage) -> Path | None:
    """The stored file behind a link docmill issued (read directly, not over HTTP)."""
    if url.startswith(FILETOKEN):
        path = storage.find_single(url[len(FILETOKEN):].strip("/"))
        if path is None:
            raise InputURLError("The file token is unknown or its file has expired.")
        return path
    link = parse_own_url(url)
    if link is None:
        return None
    problem = storage.check_link(link)
    if problem == "link expired":
        raise InputURLError("The input link has expired; upload the file again.")
    if problem:
        raise ForbiddenURLError(f"The input link is not valid ({problem}).")
    path = storage.existing_path(link.file_id, link.name)
    if path is None:
        raise InputURLError(
            "The input file was not found: it was never uploaded, or it expired or was deleted."
        )
    return path


def _link_or_copy(source: Path, target: Path) -> Path:
    # A hard link is instant and keeps the input alive even if the sweeper removes the original.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target
