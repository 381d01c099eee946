"""Turn the `url` parameter (one URL or a comma list) into local input files for an op."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from docmill.errors import ForbiddenURLError, InputURLError, MissingInputError
from docmill.inputs.fetcher import FetchPolicy, fetch_to_file
from docmill.names import sanitize_file_name
from docmill.storage.base import Storage

FILETOKEN = "filetoken://"


def split_urls(url_param: str) -> list[str]:
    return [part.strip() for part in (url_param or "").split(",") if part.strip()]


def resolve_inputs(
    url_param: str,
    destination: Path,
    storage: Storage,
    policy: FetchPolicy,
    auth: tuple[str, str] | None = None,
) -> list[Path]:
    """Bring every input into `destination`, in the order given; return their paths."""
    urls = split_urls(url_param)
    if not urls:
        raise MissingInputError()
    destination.mkdir(parents=True, exist_ok=True)
    if len(urls) == 1:  # no folder of its own: creating one costs more than the link
        return [_resolve_one(urls[0], destination, storage, policy, auth)]
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
    storage: Storage,
    policy: FetchPolicy,
    auth: tuple[str, str] | None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stored = _stored_file(url, storage)
    if stored is not None:
        file_id, name = stored
        return storage.copy_to(file_id, name, folder / name, policy.max_bytes)
    temporary = folder / "download"
    name = fetch_to_file(url, temporary, policy, auth)
    return temporary.rename(folder / sanitize_file_name(name, "input"))


def _stored_file(url: str, storage: Storage) -> tuple[str, str] | None:
    """(file id, name) of a file docmill stored, from its link (read from storage, not HTTP)."""
    if url.startswith(FILETOKEN):
        file_id = url[len(FILETOKEN):].strip("/")
        name = storage.single_file_name(file_id)
        if name is None:
            raise InputURLError("The file token is unknown or its file has expired.")
        return file_id, name
    link = storage.parse_link(url)
    if link is None:
        return None
    if link.problem == "link expired":
        raise InputURLError("The input link has expired; upload the file again.")
    if link.problem:
        raise ForbiddenURLError(f"The input link is not valid ({link.problem}).")
    return link.file_id, link.name
