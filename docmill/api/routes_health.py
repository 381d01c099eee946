"""`/health`: 503 until the workers and their engines are ready, then 200 with a summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from docmill.services import Services

router = APIRouter()


def health_summary(services: Services, expected_workers: int) -> tuple[bool, dict[str, Any]]:
    store = services.store
    heartbeat_age = max(10.0, services.settings.lease_seconds)
    workers = store.live_workers(heartbeat_age)
    engines_ready = all(
        engine.get("ready", False)
        for worker in workers
        for engine in worker.get("engines", {}).values()
    )
    ready = len(workers) >= max(expected_workers, 1 if expected_workers else 0) and engines_ready
    summary = {
        "status": "ok" if ready else "starting",
        "workers": {"expected": expected_workers, "alive": len(workers), "list": workers},
        "queue": {"depth": services.queue.depth()},
        "jobs": store.count_by_status(),
        "engines": {
            "libreoffice": [w["engines"]["libreoffice"] for w in workers
                            if "libreoffice" in w.get("engines", {})]
        },
    }
    return ready, summary


@router.get("/health", summary="Readiness: 503 until workers and engines are up")
async def health(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    ready, summary = health_summary(services, request.app.state.expected_workers)
    return JSONResponse(summary, status_code=200 if ready else 503)
