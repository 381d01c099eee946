"""The JSON answers PDF.co clients read: success, async acceptance, job status, errors."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from docmill.errors import DocmillError
from docmill.jobs.store import Job
from docmill.operation import Operation, ResultShape

# A self-hosted server has no credits; clients that read these must still get numbers.
REMAINING_CREDITS = 1_000_000_000


def credits(page_count: int) -> dict[str, int]:
    return {"credits": max(1, page_count), "remainingCredits": REMAINING_CREDITS}


def error_response(error: DocmillError, job_id: str | None = None) -> JSONResponse:
    body = error.envelope()
    if job_id:
        body["jobId"] = job_id
    return JSONResponse(body, status_code=error.status)


def accepted_response(job_id: str, url: str, name: str) -> dict[str, Any]:
    return {
        "error": False, "status": 200, "jobId": job_id, "url": url, "name": name,
        "message": "Job created; poll /job/check with the jobId.", **credits(0),
    }


def success_response(op: Operation, job: Job, inline: bool) -> dict[str, Any]:
    result = dict(job.result or {})
    text = result.pop("text", None)
    body: dict[str, Any] = {"error": False, "status": 200, "jobId": job.id, **result}
    if op.result is ResultShape.MANY_FILES:
        body["url"] = result["urls"][0] if result.get("urls") else ""
    if inline and text is not None:
        body["body"] = text
    body["duration"] = job.duration_ms
    body.update(credits(result.get("pageCount", 0)))
    return body


def job_check_response(job: Job | None, job_id: str, force: bool) -> dict[str, Any]:
    if job is None:
        # The vendor answers `working` for ids it does not know, `unknown` only if forced.
        status = "unknown" if force else "working"
        return {"status": status, "jobId": job_id, "error": False, "message": "",
                **credits(0)}
    status = "working" if job.status == "queued" else job.status
    body: dict[str, Any] = {
        "status": status, "jobId": job.id, "error": False, "duration": job.duration_ms,
        "message": _status_message(job),
    }
    if job.status == "success" and job.result:
        body["url"] = job.result.get("url", "")
        body["pageCount"] = job.result.get("pageCount", 0)
        if "urls" in job.result:
            body["urls"] = job.result["urls"]
    if job.status == "failed":
        body["errorCode"] = job.error_status
    body.update(credits(body.get("pageCount", 0)))
    return body


def _status_message(job: Job) -> str:
    if job.status == "success":
        return "Success"
    if job.status in ("queued", "working"):
        return "Working"
    return job.message
