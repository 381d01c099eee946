"""S3 storage: files in any S3-compatible bucket, links are the bucket's own presigned URLs.

File bytes flow between the client and the bucket (a presigned PUT for uploads, a presigned
GET for results) without passing through docmill. Workers stream inputs from the bucket to
disk and outputs from disk to the bucket (ranged and multipart transfers), so no file is
ever held whole in memory.

Keys are `<prefix><file id>/<name>`. A file id starts with its expiry (8 hex digits of Unix
seconds), then 24 random hex digits, so the listing order of keys is the order in which
they expire: the sweeper reads from the start of the listing and stops at the first key
still alive. Ids and names use only `[0-9a-f]` and `[A-Za-z0-9._-]`: no `&`, `#`, `,`, `+`
or spaces in a key. (The presigned query string itself holds `&`: a client that pastes a
result URL unencoded into someone else's query string cuts it, as with cloud PDF.co; our
own API only needs the path of a link it issued, so such inputs still work here.)
"""

from __future__ import annotations

import contextlib
import mimetypes
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from docmill.config import ConfigurationError
from docmill.errors import InputURLError, StorageError, TooLargeError
from docmill.storage.base import MISSING_INPUT_MESSAGE, OwnLink, Storage
from docmill.storage.local import FILE_ID, SAFE_NAME

# SigV4 presigned URLs live at most 7 days; a longer `expiration` keeps the file that long
# (the sweeper honours it) but its link stops working after a week.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
HEALTH_CACHE_SECONDS = 5.0
_PROBE_KEY = "docmill-probe"
_NETWORK_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
)
# Multipart above 16 MiB, in 16 MiB parts, 4 at a time: memory stays bounded whatever the size.
TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024,
    max_concurrency=4, use_threads=True,
)


@dataclass(frozen=True)
class S3Location:
    """Where the files go, from `s3://bucket[/prefix]?endpoint=...&region=...`."""

    bucket: str
    prefix: str  # "" or ending with "/"
    endpoint: str | None  # S3 API endpoint the nodes use (None: AWS)
    public_endpoint: str | None  # endpoint written into links for clients, if different
    region: str | None
    addressing: str  # "path", "virtual" or "auto"


def parse_s3_url(url: str) -> S3Location:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(
            f"DOCMILL_STORAGE={url!r} is not an S3 URL: use "
            "s3://bucket[/prefix]?endpoint=https://host&region=us-east-1, or leave it empty "
            "for the local data directory."
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"endpoint", "public_endpoint", "region", "addressing"}
    if unknown:
        raise ConfigurationError(
            f"DOCMILL_STORAGE: unknown option(s) {sorted(unknown)}; known: endpoint, "
            "public_endpoint, region, addressing."
        )
    prefix = parts.path.strip("/")
    endpoint = query.get("endpoint") or None
    addressing = query.get("addressing") or ("path" if endpoint else "auto")
    if addressing not in ("path", "virtual", "auto"):
        raise ConfigurationError("DOCMILL_STORAGE: addressing must be path, virtual or auto.")
    return S3Location(
        bucket=parts.netloc,
        prefix=f"{prefix}/" if prefix else "",
        endpoint=endpoint,
        public_endpoint=query.get("public_endpoint") or None,
        region=query.get("region") or None,
        addressing=addressing,
    )


class S3Storage(Storage):
    backend = "s3"

    def __init__(self, url: str, scratch_dir: Path) -> None:
        self.location = parse_s3_url(url)
        self.bucket = self.location.bucket
        self.prefix = self.location.prefix
        self.scratch_dir = scratch_dir
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        session = boto3.session.Session()
        self.client = self._client(session, self.location.endpoint)
        self.presigner = (
            self._client(session, self.location.public_endpoint)
            if self.location.public_endpoint else self.client
        )
        # Links from either endpoint are recognised as ours.
        self._link_bases = {self._link_base(self.client), self._link_base(self.presigner)}
        self._health: tuple[float, dict[str, Any]] | None = None

    def _client(self, session: boto3.session.Session, endpoint: str | None) -> Any:
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": self.location.addressing},
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=5, read_timeout=60,
        )
        return session.client("s3", endpoint_url=endpoint, region_name=self.location.region,
                              config=config)

    def _link_base(self, client: Any) -> tuple[str, str]:
        """(scheme://host, path up to the key) of the links `client` presigns."""
        probe = client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": _PROBE_KEY}, ExpiresIn=60
        )
        parts = urlsplit(probe)
        return (f"{parts.scheme}://{parts.netloc}".lower(), parts.path[: -len(_PROBE_KEY)])

    def key(self, file_id: str, name: str) -> str:
        if not FILE_ID.match(file_id) or not SAFE_NAME.match(name):
            raise ValueError("invalid file id or name")
        return f"{self.prefix}{file_id}/{name}"

    def new_file_id(self, expires_at: float) -> str:
        return f"{int(expires_at):08x}{secrets.token_hex(12)}"

    # -- links ---------------------------------------------------------------------------
    def file_url(self, base_url: str, file_id: str, name: str, expires_at: float) -> str:
        return self._presign("get_object", file_id, name, expires_at)

    def upload_url(self, base_url: str, file_id: str, name: str, expires_at: float) -> str:
        return self._presign("put_object", file_id, name, expires_at)

    def _presign(self, method: str, file_id: str, name: str, expires_at: float) -> str:
        seconds = max(1, min(int(expires_at - time.time()), MAX_PRESIGN_SECONDS))
        return self.presigner.generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": self.key(file_id, name)},
            ExpiresIn=seconds,
        )

    def parse_link(self, url: str) -> OwnLink | None:
        # Only the path matters: a client that pasted our link unencoded into a query string
        # cut its signature off at the first '&', and the key is all we need to read it.
        parts = urlsplit(url.strip())
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        for base_origin, base_path in self._link_bases:
            if origin != base_origin or not parts.path.startswith(base_path):
                continue
            key = unquote(parts.path[len(base_path):])
            if not key.startswith(self.prefix):
                return None
            file_id, _, name = key[len(self.prefix):].partition("/")
            if not FILE_ID.match(file_id) or not SAFE_NAME.match(name):
                return None
            expired = file_expiry(file_id) < time.time()
            return OwnLink(file_id, name, "link expired" if expired else None)
        return None

    # -- files ---------------------------------------------------------------------------
    def reserve(self, file_id: str, expires_at: float) -> None:
        """Nothing to note: the expiry is part of the file id."""

    def save_file(self, file_id: str, name: str, source: Path, expires_at: float) -> None:
        with _storage_errors("store the file"):
            self.client.upload_file(
                str(source), self.bucket, self.key(file_id, name),
                ExtraArgs=_object_headers(name, expires_at), Config=TRANSFER,
            )

    def save_bytes(self, file_id: str, name: str, data: bytes, expires_at: float) -> None:
        with _storage_errors("store the file"):
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(file_id, name), Body=data,
                **_object_headers(name, expires_at),
            )

    def copy_to(self, file_id: str, name: str, target: Path, max_bytes: int) -> Path:
        key = self.key(file_id, name)
        try:
            with _storage_errors("read the input file"):
                size = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
                if size > max_bytes:
                    raise TooLargeError(
                        f"The input file is larger than the limit of {max_bytes} bytes."
                    )
                self.client.download_file(self.bucket, key, str(target), Config=TRANSFER)
        except botocore.exceptions.ClientError as error:
            if _is_not_found(error):
                raise InputURLError(MISSING_INPUT_MESSAGE) from error
            raise StorageError(f"Could not read the input file from S3: {error}.") from error
        return target

    def single_file_name(self, file_id: str) -> str | None:
        if not FILE_ID.match(file_id) or file_expiry(file_id) < time.time():
            return None
        with _storage_errors("list the files"):
            listing = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=f"{self.prefix}{file_id}/", MaxKeys=100
            )
        names = sorted(item["Key"].rsplit("/", 1)[1] for item in listing.get("Contents", []))
        return names[0] if names else None

    def temporary_upload_path(self, file_id: str) -> Path:
        return self.scratch_dir / f".{file_id}.{uuid.uuid4().hex[:8]}.part"

    def delete(self, file_id: str) -> bool:
        if not FILE_ID.match(file_id):
            return False
        with _storage_errors("delete the file"):
            listing = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=f"{self.prefix}{file_id}/", MaxKeys=1000
            )
            keys = [item["Key"] for item in listing.get("Contents", [])]
            self._delete_keys(keys)
        return bool(keys)

    def sweep(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        expired_keys: list[str] = []
        expired_ids: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                file_id = item["Key"][len(self.prefix):].partition("/")[0]
                if not FILE_ID.match(file_id):
                    continue  # not ours: never touched
                if file_expiry(file_id) >= now:
                    self._delete_keys(expired_keys)  # keys are in expiry order: done
                    return len(expired_ids)
                expired_keys.append(item["Key"])
                expired_ids.add(file_id)
                if len(expired_keys) == 1000:
                    self._delete_keys(expired_keys)
                    expired_keys = []
        self._delete_keys(expired_keys)
        return len(expired_ids)

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )

    # -- health --------------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """Whether the bucket answers; cached a few seconds (load balancers poll /health)."""
        if self._health and time.monotonic() - self._health[0] < HEALTH_CACHE_SECONDS:
            return self._health[1]
        status: dict[str, Any] = {"backend": self.backend, "bucket": self.bucket}
        try:
            self.client.head_bucket(Bucket=self.bucket)
            status["ok"] = True
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            status.update(ok=False, error=str(error))
        self._health = (time.monotonic(), status)
        return status


def file_expiry(file_id: str) -> int:
    """The Unix time a file id's files expire at (its first 8 hex digits)."""
    return int(file_id[:8], 16)


def _object_headers(name: str, expires_at: float) -> dict[str, Any]:
    return {
        "ContentType": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "ContentDisposition": f'attachment; filename="{name}"',
        "Metadata": {"docmill-expires": str(int(expires_at))},
    }


def _is_not_found(error: botocore.exceptions.ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


@contextlib.contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Trouble with the bucket becomes a StorageError naming what failed (503 if unreachable).

    "Not found" passes through: the caller knows what a missing file means.
    """
    try:
        yield
    except _NETWORK_ERRORS as error:
        raise StorageError(
            f"Could not {action}: the file store (S3) is unreachable ({error}).", 503
        ) from error
    except botocore.exceptions.ClientError as error:
        if _is_not_found(error):
            raise
        raise StorageError(f"Could not {action} in S3: {error}.") from error
