"""One route per operation path, generated from the op registry."""

from __future__ import annotations

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
from docmill.api.waiting import JobWaiters
from docmill.errors import DocmillError, MissingInputError, SyncTimeoutError, TooManyRequestsError
from docmill.jobs.results import plan_outputs, planned_url
from docmill.operation import CommonParams, Operation, operations
from docmill.services import Services


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
    job_id, base_url = uuid.uuid4().hex, _base_url(request, services)
    waiters: JobWaiters = request.app.state.job_waiters
    with waiters.watch(job_id) as watch:
        # The store and queue may be across the network (Redis): keep them off the event loop.
        context = await anyio.to_thread.run_sync(queue_job, services, op, params, base_url, job_id)
        if params.async_:
            url = planned_url(op, job_id, context, services.storage)
            return accepted_response(job_id, url, context["name"])
        job = await watch.result(services.settings.sync_timeout)
    if job is None:
        return error_response(SyncTimeoutError(), job_id)
    if job.status != "success":
        return error_response(DocmillError(job.message, job.error_status or 500), job_id)
    return success_response(op, job, params.inline)


def queue_job(
    services: Services, op: Operation, params: CommonParams, base_url: str, job_id: str
) -> dict[str, Any]:
    """Create the job record and put its id on the queue; return its context."""
    if services.queue.depth() >= services.settings.max_queue:
        raise TooManyRequestsError()
    context = plan_outputs(op, params, base_url, services.storage)
    services.store.create(job_id, op.name, params.model_dump(by_alias=True), context)
    services.queue.enqueue(job_id)
    return context


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
