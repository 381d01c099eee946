"""File routes: presigned uploads, direct uploads, downloads of signed links, delete.

With S3 storage the presigned links are the bucket's own, so clients PUT and GET the bytes
there; the `/uploads/...` and `/files/...` routes serve local storage only.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse

from docmill.api.auth import require_api_key
from docmill.api.params import request_params
from docmill.errors import (
    BadRequestError,
    ForbiddenURLError,
    MissingInputError,
    NotFoundError,
    TooLargeError,
)
from docmill.inputs.fetcher import fetch_to_file
from docmill.names import sanitize_file_name
from docmill.services import Services
from docmill.storage.local import LocalStorage, OwnFile

UPLOAD_WINDOW = 15 * 60  # a presigned PUT link lives 15 minutes, like the vendor's
DEFAULT_EXPIRATION_MINUTES = 60
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields around a file

api_router = APIRouter(dependencies=[Depends(require_api_key)])
# Signed links need no key: clients fetch results with a plain GET.
link_router = APIRouter()


def _services(request: Request) -> Services:
    return request.app.state.services


def _base_url(request: Request) -> str:
    services = _services(request)
    return services.settings.public_url or str(request.base_url)


def _expiration_seconds(params: dict[str, Any]) -> float:
    try:
        minutes = int(params.get("expiration") or DEFAULT_EXPIRATION_MINUTES)
    except ValueError:
        minutes = DEFAULT_EXPIRATION_MINUTES
    return max(1, min(minutes, 60 * 24 * 30)) * 60


def _local_storage(request: Request) -> LocalStorage:
    """The local storage behind `/uploads` and `/files` links (404 with S3 storage)."""
    storage = _services(request).storage
    if not isinstance(storage, LocalStorage):
        raise NotFoundError("Files are served by the S3 store: use the links docmill gave.")
    return storage


def _uploaded(request: Request, file_id: str, name: str, expires_at: float) -> dict[str, Any]:
    url = _services(request).storage.file_url(_base_url(request), file_id, name, expires_at)
    return {"error": False, "status": 200, "url": url, "name": name}


@api_router.get("/file/upload/get-presigned-url", summary="Get a URL to PUT a file to")
async def get_presigned_url(request: Request) -> dict[str, Any]:
    params = await request_params(request)
    storage = _services(request).storage
    name = sanitize_file_name(params.get("name"), "file")
    expires_at = time.time() + UPLOAD_WINDOW + _expiration_seconds(params)
    file_id = storage.new_file_id(expires_at)
    storage.reserve(file_id, expires_at)
    return {
        "error": False,
        "status": 200,
        "presignedUrl": storage.upload_url(
            _base_url(request), file_id, name, time.time() + UPLOAD_WINDOW
        ),
        "url": storage.file_url(_base_url(request), file_id, name, expires_at),
        "name": name,
    }


@link_router.put("/uploads/{file_id}/{token}/{name}", summary="PUT the bytes of a presigned upload")
async def put_upload(request: Request, file_id: str, token: str, name: str) -> dict[str, Any]:
    services = _services(request)
    storage = _local_storage(request)
    link = OwnFile("uploads", file_id, token, name)
    problem = storage.check_link(link)
    if problem:
        raise ForbiddenURLError(f"Upload link refused: {problem}.")
    _refuse_declared_size(request, services.settings.max_upload_bytes, MULTIPART_OVERHEAD)
    expires_at = storage.expiry_of(file_id) or time.time() + 3600
    temporary = storage.temporary_upload_path(file_id)
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            await _save_multipart_file(request, temporary, services.settings.max_upload_bytes)
        else:
            await _save_stream(request, temporary, services.settings.max_upload_bytes)
        storage.save_file(file_id, name, temporary, expires_at)
    finally:
        temporary.unlink(missing_ok=True)
    return {"error": False, "status": 200, "name": name}


@link_router.get("/files/{file_id}/{token}/{name}", summary="Download a file by its signed link")
async def download(request: Request, file_id: str, token: str, name: str) -> FileResponse:
    storage = _local_storage(request)
    problem = storage.check_link(OwnFile("files", file_id, token, name))
    if problem == "link expired":
        raise NotFoundError("This link has expired.")
    if problem:
        raise ForbiddenURLError(f"Link refused: {problem}.")
    path = storage.existing_path(file_id, name)
    if path is None:
        raise NotFoundError("The file is not ready yet, or it has expired.")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=60",
        },
    )


@api_router.post("/file/upload", summary="Upload a file (multipart field 'file')")
async def upload_multipart(request: Request) -> dict[str, Any]:
    services = _services(request)
    _refuse_declared_size(request, services.settings.max_upload_bytes, MULTIPART_OVERHEAD)
    form = await request.form(max_part_size=services.settings.max_upload_bytes)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise MissingInputError("Send the file in the multipart field 'file'.")
    name = sanitize_file_name(str(form.get("name") or upload.filename or ""), "file")
    expires_at = time.time() + _expiration_seconds(dict(form))
    file_id = services.storage.new_file_id(expires_at)
    temporary = services.storage.temporary_upload_path(file_id)
    try:
        await _copy_upload(upload, temporary, services.settings.max_upload_bytes)
        await anyio.to_thread.run_sync(
            services.storage.save_file, file_id, name, temporary, expires_at
        )
    finally:
        temporary.unlink(missing_ok=True)
    return _uploaded(request, file_id, name, expires_at)


@api_router.post("/file/upload/base64", summary="Upload a file sent as base64 or a data URI")
async def upload_base64(request: Request) -> dict[str, Any]:
    services = _services(request)
    limit = services.settings.max_upload_bytes
    # base64 takes 4 bytes for 3; form encoding of its '+' and '/' adds up to 6 % more
    params = await request_params(request, limit * 3 // 2 + MULTIPART_OVERHEAD)
    data = str(params.get("file") or "")
    if not data:
        raise MissingInputError("Send the file's content, base64-encoded, in 'file'.")
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        content = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as error:
        raise BadRequestError("'file' is not valid base64.") from error
    if len(content) > limit:
        raise TooLargeError(f"The upload is larger than the limit of {limit} bytes.")
    name = sanitize_file_name(params.get("name"), "file")
    expires_at = time.time() + _expiration_seconds(params)
    file_id = services.storage.new_file_id(expires_at)
    await anyio.to_thread.run_sync(
        services.storage.save_bytes, file_id, name, content, expires_at
    )
    return _uploaded(request, file_id, name, expires_at)


@api_router.post("/file/upload/url", summary="Copy a file from a URL into docmill's storage")
async def upload_from_url(request: Request) -> dict[str, Any]:
    services = _services(request)
    params = await request_params(request)
    url = str(params.get("url") or "")
    if not url:
        raise MissingInputError()
    expires_at = time.time() + _expiration_seconds(params)
    file_id = services.storage.new_file_id(expires_at)
    temporary = services.storage.temporary_upload_path(file_id)
    try:
        fetched_name = await anyio.to_thread.run_sync(
            fetch_to_file, url, temporary, services.fetch_policy
        )
        name = sanitize_file_name(params.get("name") or fetched_name, "file")
        await anyio.to_thread.run_sync(
            services.storage.save_file, file_id, name, temporary, expires_at
        )
    finally:
        temporary.unlink(missing_ok=True)
    return _uploaded(request, file_id, name, expires_at)


@api_router.post("/file/delete", summary="Delete a file docmill stored")
async def delete_file(request: Request) -> dict[str, Any]:
    services = _services(request)
    params = await request_params(request)
    link = services.storage.parse_link(str(params.get("file") or params.get("url") or ""))
    if link is None or link.problem not in (None, "link expired"):
        raise BadRequestError("'file' must be a file link docmill issued.")
    await anyio.to_thread.run_sync(services.storage.delete, link.file_id)
    return {"error": False, "status": 200}


def _refuse_declared_size(request: Request, limit: int, overhead: int = 0) -> None:
    """413 at once for a body whose Content-Length is over the limit, before reading it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + overhead:
        raise TooLargeError(
            f"The upload ({declared} bytes) is larger than the limit of {limit} bytes "
            "(DOCMILL_MAX_UPLOAD_MB)."
        )


async def _save_stream(request: Request, target: Path, limit: int) -> None:
    written = 0
    async with await anyio.open_file(target, "wb") as handle:
        async for chunk in request.stream():
            written += len(chunk)
            if written > limit:
                raise TooLargeError(f"The upload is larger than the limit of {limit} bytes.")
            await handle.write(chunk)


async def _save_multipart_file(request: Request, target: Path, limit: int) -> None:
    form = await request.form(max_part_size=limit)
    upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
    if upload is None:
        raise MissingInputError("The multipart upload holds no file.")
    await _copy_upload(upload, target, limit)


async def _copy_upload(upload: UploadFile, target: Path, limit: int) -> None:
    written = 0
    async with await anyio.open_file(target, "wb") as handle:
        while chunk := await upload.read(1024 * 1024):
            written += len(chunk)
            if written > limit:
                raise TooLargeError(f"The upload is larger than the limit of {limit} bytes.")
            await handle.write(chunk)

