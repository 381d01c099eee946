"""Job routes: `/job/check` (GET and POST, `jobid` in any case) and account balance."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends
from starlette.requests import Request

from docmill.api.auth import require_api_key
from docmill.api.params import request_params
from docmill.api.responses import REMAINING_CREDITS, job_check_response
from docmill.errors import BadRequestError
from docmill.services import Services

router = APIRouter(dependencies=[Depends(require_api_key)])


@router.api_route("/job/check", methods=["GET", "POST"], summary="Status of a job")
async def job_check(request: Request) -> dict[str, Any]:
    services: Services = request.app.state.services
    params = await request_params(request)
    job_id = str(params.get("jobid") or "").strip()
    if not job_id:
        raise BadRequestError("Send the job's id in 'jobid'.")
    force = str(params.get("force", "")).strip().lower() in ("1", "true", "yes")
    job = await anyio.to_thread.run_sync(services.store.get, job_id)
    return job_check_response(job, job_id, force)


@router.get("/account/credit/balance", summary="Remaining credits (unlimited when self-hosted)")
async def credit_balance() -> dict[str, Any]:
    return {"error": False, "status": 200, "remainingCredits": REMAINING_CREDITS}
