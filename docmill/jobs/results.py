"""Names and links of a job's outputs, fixed at submission and filled in when it succeeds.

An async answer hands out the result `url` before the job runs, so the names, the expiry
and hence the signed links are decided at submission and stored in the job's context.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from docmill.inputs.resolve import input_file_name, split_urls
from docmill.names import sanitize_name
from docmill.operation import CommonParams, Operation, OpResult, ResultShape
from docmill.storage.local import LocalStorage


def plan_outputs(op: Operation, params: CommonParams, base_url: str) -> dict[str, Any]:
    """The job context: where and under which names the outputs will appear."""
    urls = split_urls(params.url)
    default_stem = Path(input_file_name(urls[0])).stem if urls else ""
    name = sanitize_name(params.name, default_stem or "result", op.extension)
    return {
        "base_url": base_url,
        "name": name,
        "expires_at": time.time() + params.expiration * 60,
    }


def planned_url(op: Operation, job_id: str, context: dict, storage: LocalStorage) -> str:
    """The `url` an async answer gives: the one file, or the JSON list of many files."""
    return storage.file_url(
        context["base_url"], job_id, _primary_name(op, context), context["expires_at"]
    )


def publish_outputs(
    op: Operation, job_id: str, context: dict, result: OpResult, storage: LocalStorage
) -> dict[str, Any]:
    """Move the op's files into storage; return the job's result payload."""
    base, expires = context["base_url"], context["expires_at"]
    payload: dict[str, Any] = {"name": context["name"], "pageCount": result.page_count}
    if op.result is ResultShape.ONE_FILE:
        storage.save_file(job_id, context["name"], result.files[0], expires)
        payload["url"] = storage.file_url(base, job_id, context["name"], expires)
        if op.inline_text:
            payload["text"] = storage.existing_path(job_id, context["name"]).read_text(
                encoding="utf-8", errors="replace"
            )
    else:
        urls = []
        for name, path in zip(_part_names(op, context, len(result.files)), result.files,
                              strict=True):
            storage.save_file(job_id, name, path, expires)
            urls.append(storage.file_url(base, job_id, name, expires))
        list_name = _primary_name(op, context)
        storage.save_bytes(job_id, list_name, json.dumps(urls).encode(), expires)
        payload["urls"] = urls
        payload["url"] = storage.file_url(base, job_id, list_name, expires)
    payload.update(result.extra)
    return payload


def _primary_name(op: Operation, context: dict) -> str:
    if op.result is ResultShape.ONE_FILE:
        return context["name"]
    return f"{Path(context['name']).stem}.json"


def _part_names(op: Operation, context: dict, count: int) -> list[str]:
    stem = Path(context["name"]).stem
    return [f"{stem}-{index}.{op.extension}" for index in range(1, count + 1)]
