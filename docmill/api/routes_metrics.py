"""`/metrics`: Prometheus text format, no API key (like `/health`, for the infrastructure)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics: queue depth, jobs, durations, engines")
async def metrics(request: Request) -> Response:
    body = await anyio.to_thread.run_sync(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
