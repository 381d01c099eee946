"""One route per operation path, generated from the op registry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from docmill.api.auth import require_api_key
from docmill.api.params import request_params, validate_params
from docmill.api.responses import accepted_response, error_response, success_response
from docmill.errors import DocmillError, MissingInputError, SyncTimeoutError, TooManyRequestsError
from docmill.jobs.results import plan_outputs, planned_url
from docmill.jobs.store import Job
from docmill.operation import CommonParams, Operation, operations
from docmill.services import Services

# A sync request looks at its job often at first (most jobs take milliseconds), then less.
WAIT_MIN, WAIT_MAX, WAIT_GROWTH = 0.001, 0.01, 1.3


def build_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_api_key)])
    for op in operations().values():
        endpoint = _make_endpoint(op)
        for path in op.paths:
            router.add_api_route(
                path, endpoint, methods=["GET", "POST"], summary=op.summary,
                name=f"{op.name}:{path}", openapi_extra=_openapi_body(op),
                response_model=None,
            )
    return router


def _make_endpoint(op: Operation) -> Callable[[Request], Awaitable[Response | dict]]:
    async def endpoint(request: Request) -> Response | dict[str, Any]:
        return await submit_job(request, op)

    endpoint.__doc__ = op.summary
    return endpoint


async def submit_job(request: Request, op: Operation) -> Response | dict[str, Any]:
    services: Services = request.app.state.services
    params = validate_params(op.params, await request_params(request))
    assert isinstance(params, CommonParams)
    if not params.url.strip():
        raise MissingInputError()
    # The store and queue may be across the network (Redis): keep them off the event loop.
    job_id, context = await anyio.to_thread.run_sync(
        queue_job, services, op, params, _base_url(request, services)
    )
    if params.async_:
        url = planned_url(op, job_id, context, services.storage)
        return accepted_response(job_id, url, context["name"])
    job = await wait_for_job(services, job_id, services.settings.sync_timeout)
    if job is None:
        return error_response(SyncTimeoutError(), job_id)
    if job.status != "success":
        return error_response(DocmillError(job.message, job.error_status or 500), job_id)
    return success_response(op, job, params.inline)


def queue_job(
    services: Services, op: Operation, params: CommonParams, base_url: str
) -> tuple[str, dict[str, Any]]:
    """Create the job record and put its id on the queue; return (job id, context)."""
    if services.queue.depth() >= services.settings.max_queue:
        raise TooManyRequestsError()
    job_id = uuid.uuid4().hex
    context = plan_outputs(op, params, base_url, services.storage)
    services.store.create(job_id, op.name, params.model_dump(by_alias=True), context)
    services.queue.enqueue(job_id)
    return job_id, context


async def wait_for_job(services: Services, job_id: str, timeout: float) -> Job | None:
    """Poll the job table until the job ends; None if it is still running after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = WAIT_MIN
    while True:
        job = await anyio.to_thread.run_sync(services.store.get, job_id)
        if job is not None and job.done:
            return job
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(delay)
        delay = min(delay * WAIT_GROWTH, WAIT_MAX)


def _base_url(request: Request, services: Services) -> str:
    return services.settings.public_url or str(request.base_url)


def _openapi_body(op: Operation) -> dict[str, Any]:
    schema = op.params.model_json_schema(by_alias=True)
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }
