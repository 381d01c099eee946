"""Run one job in a worker: inputs → op → stored outputs → job finished (→ callback)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from docmill.errors import DocmillError, ServiceUnavailableError, disk_error
from docmill.inputs.fetcher import post_json
from docmill.inputs.resolve import resolve_inputs
from docmill.jobs.doorbell import finished_jobs
from docmill.jobs.results import publish_outputs
from docmill.jobs.store import Job
from docmill.operation import get_operation
from docmill.services import Services

log = logging.getLogger("docmill.runner")
CALLBACK_ATTEMPTS = 3


class WorkerStopping(BaseException):  # noqa: N818 - a signal, not an error
    """Raised inside a running job when the worker is told to stop; the job is requeued."""


def _nothing() -> None:
    return None


def run_job(
    services: Services, job_id: str, worker_id: str,
    on_claimed: Callable[[], None] = _nothing, on_finishing: Callable[[], None] = _nothing,
) -> Job | None:
    """Claim and run one job; returns the finished job (None if it was not claimable).

    `on_claimed` runs once the job's lease is ours, `on_finishing` just before its final
    state is written: between the two, the worker's heartbeat keeps the lease alive.
    """
    store = services.store
    job = store.claim(job_id, worker_id, services.settings.lease_seconds)
    if job is None:
        return None
    on_claimed()
    workdir = services.settings.data_dir / "tmp" / job_id
    shutil.rmtree(workdir, ignore_errors=True)  # leftovers of an attempt whose worker died
    try:
        payload = _execute(services, job, workdir)
        on_finishing()
        store.succeed(job_id, payload)
    except ServiceUnavailableError:
        # The job store itself is unreachable: nothing can be recorded. The lease runs out
        # and the job is retried once the store is back.
        on_finishing()
        raise
    except WorkerStopping:
        on_finishing()
        _requeue(services, job_id, worker_id)
        raise
    except Exception as error:  # the job fails, the worker lives
        on_finishing()
        _fail(services, job, error)
        _announce_finished(services, job_id)
    else:
        _announce_finished(services, job_id)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if _has_secrets(job.params):
        store.forget_secrets(job_id)  # passwords are not kept in job records once it has ended
    finished = store.get(job_id)
    if finished is not None and finished.params.get("callback"):
        send_callback(services, finished)
    return finished


def _fail(services: Services, job: Job, error: Exception) -> None:
    if isinstance(error, DocmillError):
        services.store.fail(job.id, error.status, error.message)
        return
    full_disk = disk_error(error)  # else a bug or an engine surprise
    if full_disk is not None:
        services.store.fail(job.id, full_disk.status, full_disk.message)
        return
    log.exception("job %s (%s) failed unexpectedly", job.id, job.op)
    services.store.fail(
        job.id, 500, f"Internal error while processing the document ({type(error).__name__})."
    )


def _announce_finished(services: Services, job_id: str) -> None:
    """Wake the sync request waiting for this job, if it waits in this machine's API."""
    finished_jobs(services.settings.data_dir).ring(job_id)


def _has_secrets(params: dict) -> bool:
    return bool(params.get("password") or params.get("httppassword"))


def _execute(services: Services, job: Job, workdir: Path) -> dict:
    op = get_operation(job.op)
    params = op.params.model_validate(job.params)
    auth = (params.httpusername, params.httppassword) if params.httpusername else None
    started = time.monotonic()
    inputs = resolve_inputs(
        params.url, workdir / "in", services.storage, services.fetch_policy, auth
    )
    out_dir = workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = op.run(inputs, params, out_dir)
    log.info("job %s %s: %d page(s) in %.0f ms", job.id, job.op, result.page_count,
             (time.monotonic() - started) * 1000)
    return publish_outputs(op, job.id, job.context, result, services.storage)


def _requeue(services: Services, job_id: str, worker_id: str) -> None:
    db = services.store
    job = db.get(job_id)
    if job is not None and job.status == "working" and job.worker == worker_id:
        db.release(job_id, worker_id)
        services.queue.enqueue(job_id)


def callback_payload(job: Job) -> dict:
    payload = {"jobId": job.id, "status": job.status, "message": job.message, "error": False}
    if job.result:
        payload.update({k: v for k, v in job.result.items() if k != "text"})
    return payload


def send_callback(services: Services, job: Job) -> None:
    """POST the job's result to its webhook, through the URL guard, with 3 tries."""
    for attempt in range(CALLBACK_ATTEMPTS):
        try:
            status = post_json(job.params["callback"], callback_payload(job), services.fetch_policy)
            if status < 500:
                return
        except DocmillError as error:
            log.warning("callback for job %s refused: %s", job.id, error.message)
            return
        except Exception as error:  # network trouble: try again
            log.warning("callback for job %s failed: %s", job.id, error)
        time.sleep(2**attempt)
