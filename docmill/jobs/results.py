"""Names and links of a job's outputs, fixed at submission and filled in when it succeeds.

An async answer hands out the result `url` before the job runs, so the names, the expiry,
the file id and hence the signed links are decided at submission and stored in the job's
context.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from docmill.inputs.resolve import input_file_name, split_urls
from docmill.names import sanitize_name
from docmill.operation import CommonParams, Operation, OpResult, ResultShape
from docmill.storage.base import Storage


def plan_outputs(
    op: Operation, params: CommonParams, base_url: str, storage: Storage
) -> dict[str, Any]:
    """The job context: where and under which names the outputs will appear."""
    urls = split_urls(params.url)
    default_stem = Path(input_file_name(urls[0])).stem if urls else ""
    name = sanitize_name(params.name, default_stem or "result", op.extension)
    expires_at = time.time() + params.expiration * 60
    return {
        "base_url": base_url,
        "name": name,
        "expires_at": expires_at,
        "file_id": storage.new_file_id(expires_at),
    }


def output_file_id(job_id: str, context: dict) -> str:
    """The file id a job's outputs are stored under (the job id for jobs queued before
    contexts carried one)."""
    return context.get("file_id") or job_id


def planned_url(op: Operation, job_id: str, context: dict, storage: Storage) -> str:
    """The `url` an async answer gives: the one file, or the JSON list of many files."""
    return storage.file_url(context["base_url"], output_file_id(job_id, context),
                            _primary_name(op, context), context["expires_at"])


def publish_outputs(
    op: Operation, job_id: str, context: dict, result: OpResult, storage: Storage
) -> dict[str, Any]:
    """Move the op's files into storage; return the job's result payload.

    All or nothing: if one output cannot be stored, the ones already stored are removed.
    """
    file_id = output_file_id(job_id, context)
    try:
        return _store_outputs(op, file_id, context, result, storage)
    except Exception:
        storage.delete(file_id)
        raise


def _store_outputs(
    op: Operation, file_id: str, context: dict, result: OpResult, storage: Storage
) -> dict[str, Any]:
    base, expires = context["base_url"], context["expires_at"]
    payload: dict[str, Any] = {"name": context["name"], "pageCount": result.page_count}
    if op.result is ResultShape.ONE_FILE:
        if op.inline_text:  # read before storing: storing may move the file away
            payload["text"] = result.files[0].read_text(encoding="utf-8", errors="replace")
        storage.save_file(file_id, context["name"], result.files[0], expires)
        payload["url"] = storage.file_url(base, file_id, context["name"], expires)
    else:
        urls = []
        for name, path in zip(_part_names(op, context, len(result.files)), result.files,
                              strict=True):
            storage.save_file(file_id, name, path, expires)
            urls.append(storage.file_url(base, file_id, name, expires))
        list_name = _primary_name(op, context)
        storage.save_bytes(file_id, list_name, json.dumps(urls).encode(), expires)
        payload["urls"] = urls
        payload["url"] = storage.file_url(base, file_id, list_name, expires)
    payload.update(result.extra)
    return payload


def _primary_name(op: Operation, context: dict) -> str:
    if op.result is ResultShape.ONE_FILE:
        return context["name"]
    return f"{Path(context['name']).stem}.json"


def _part_names(op: Operation, context: dict, count: int) -> list[str]:
    stem = Path(context["name"]).stem
    return [f"{stem}-{index}.{op.extension}" for index in range(1, count + 1)]
