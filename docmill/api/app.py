"""The FastAPI application: routers at both `/v1/...` and `/...`, one error envelope."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from docmill import __version__
from docmill.api import routes_files, routes_health, routes_jobs, routes_metrics, routes_ops
from docmill.api.waiting import JobWaiters
from docmill.errors import DocmillError, InvalidParametersError, disk_error
from docmill.metrics import metrics_registry
from docmill.services import Services

log = logging.getLogger("docmill.api")


def create_app(services: Services, expected_workers: int = 0) -> FastAPI:
    waiters = JobWaiters(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        waiters.close()  # its doorbell socket

    app = FastAPI(
        title="docmill",
        version=__version__,
        description="Self-hosted document processing, wire-compatible with the PDF.co Web API.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.job_waiters = waiters
    app.state.expected_workers = expected_workers
    app.state.metrics_registry = metrics_registry(services)
    for router in (routes_ops.build_router(), routes_files.api_router, routes_jobs.router,
                   routes_files.link_router):
        app.include_router(router, prefix="/v1")
        app.include_router(router)
    app.include_router(routes_health.router)
    app.include_router(routes_metrics.router)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DocmillError)
    async def docmill_error(request: Request, error: DocmillError) -> JSONResponse:
        return JSONResponse(error.envelope(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return await docmill_error(request, InvalidParametersError(str(error.errors()[0]["msg"])))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = "Not found." if error.status_code == 404 else str(error.detail)
        return JSONResponse({"error": True, "status": error.status_code, "message": message},
                            status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        full_disk = disk_error(error)
        if full_disk is not None:
            return JSONResponse(full_disk.envelope(), status_code=full_disk.status)
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(
            {"error": True, "status": 500, "message": "Internal server error."}, status_code=500
        )
