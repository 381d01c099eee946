"""`/health`: 503 until the workers, their engines and the backends are ready, then 200.

The summary also says whether the job store, the queue and the file store answer, so a
lost Redis or bucket shows here (as 503 with the reason) instead of as failing requests.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from docmill.services import Services

router = APIRouter()


def backend_status(services: Services) -> dict[str, dict[str, Any]]:
    """Whether each shared backend answers: {"store": {...}, "queue": {...}, "storage": {...}}."""
    status: dict[str, dict[str, Any]] = {}
    for name, backend, probe in (
        ("store", services.store.backend, services.store.ping),
        ("queue", services.queue.backend, services.queue.ping),
    ):
        try:
            probe()
            status[name] = {"backend": backend, "ok": True}
        except Exception as error:  # any failure to answer is what this reports
            status[name] = {"backend": backend, "ok": False, "error": _message(error)}
    try:
        status["storage"] = services.storage.check()
    except Exception as error:
        status["storage"] = {"backend": services.storage.backend, "ok": False,
                             "error": _message(error)}
    return status


def health_summary(services: Services, expected_workers: int) -> tuple[bool, dict[str, Any]]:
    backends = backend_status(services)
    backends_ok = all(backend["ok"] for backend in backends.values())
    store_ok, queue_ok = backends["store"]["ok"], backends["queue"]["ok"]
    heartbeat_age = max(10.0, services.settings.lease_seconds)
    workers = services.store.live_workers(heartbeat_age) if store_ok else []
    engines_ready = all(
        engine.get("ready", False)
        for worker in workers
        for engine in worker.get("engines", {}).values()
    )
    ready = (backends_ok and engines_ready
             and len(workers) >= max(expected_workers, 1 if expected_workers else 0))
    summary = {
        "status": "ok" if ready else ("starting" if backends_ok else "unavailable"),
        "workers": {"expected": expected_workers, "alive": len(workers), "list": workers},
        "queue": {"depth": services.queue.depth() if queue_ok else None},
        "jobs": services.store.count_by_status() if store_ok else {},
        "engines": {
            "libreoffice": [w["engines"]["libreoffice"] for w in workers
                            if "libreoffice" in w.get("engines", {})]
        },
        "backends": backends,
    }
    return ready, summary


def _message(error: Exception) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


@router.get("/health", summary="Readiness: 503 until workers, engines and backends are up")
async def health(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    try:
        ready, summary = await anyio.to_thread.run_sync(
            health_summary, services, request.app.state.expected_workers
        )
    except Exception as error:  # the store went away between two calls: still an answer
        ready, summary = False, {"status": "unavailable", "error": _message(error)}
    return JSONResponse(summary, status_code=200 if ready else 503)
