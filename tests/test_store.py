"""The job table: claims, leases, retry once after a lost worker, then failure.

Every test runs against both stores, SQLite (embedded) and Redis (cluster): they must keep
the same rules.
"""

import time
import uuid

import pytest

from docmill.jobs.store import DURATION_BUCKETS, JobStore, SqliteJobStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path) -> JobStore:
    if request.param == "sqlite":
        return SqliteJobStore(tmp_path / "jobs.db")
    from docmill.jobs.store_redis import RedisJobStore

    backend = request.getfixturevalue("redis_backend")
    return RedisJobStore(backend.url, prefix=f"test-{uuid.uuid4().hex[:8]}:")


def test_claim_only_once(store):
    store.create("j1", "pdf_to_text", {"url": "x"}, {})
    assert store.claim("j1", "w1", 30).status == "working"
    assert store.claim("j1", "w2", 30) is None


def test_lost_worker_retried_once_then_failed(store):
    store.create("j1", "pdf_to_text", {}, {})
    store.claim("j1", "w1", lease_seconds=0)
    requeued, failed = store.requeue_expired(now=time.time() + 1)
    assert requeued == ["j1"] and not failed
    assert store.get("j1").status == "queued"
    assert store.queued_ids() == ["j1"]
    store.claim("j1", "w2", lease_seconds=0)
    requeued, failed = store.requeue_expired(now=time.time() + 1)
    assert failed == ["j1"]
    job = store.get("j1")
    assert job.status == "failed" and "killed" in job.message
    assert store.count_by_status() == {"failed": 1}


def test_live_lease_is_not_reaped(store):
    store.create("j1", "op", {}, {})
    store.claim("j1", "w1", lease_seconds=30)
    assert store.requeue_expired() == ([], [])
    assert store.renew_lease("j1", "w1", 30)
    assert not store.renew_lease("j1", "someone-else", 30)


def test_finish_is_final(store):
    store.create("j1", "op", {}, {})
    store.claim("j1", "w", 30)
    store.succeed("j1", {"url": "u"})
    store.fail("j1", 500, "late")
    assert store.get("j1").status == "success" and store.get("j1").result == {"url": "u"}
    assert not store.abort("j1")
    assert not store.renew_lease("j1", "w", 30)


def test_release_gives_the_attempt_back(store):
    store.create("j1", "op", {}, {})
    store.claim("j1", "w", 30)
    store.release("j1", "w")
    job = store.get("j1")
    assert job.status == "queued" and job.attempts == 0 and job.worker is None


def test_abort_queued_and_working_jobs(store):
    store.create("j1", "op", {}, {})
    store.create("j2", "op", {}, {})
    store.claim("j2", "w", 30)
    assert store.abort("j1") and store.abort("j2")
    assert store.get("j1").status == store.get("j2").status == "aborted"
    assert store.claim("j1", "w", 30) is None
    assert not store.renew_lease("j2", "w", 30)  # its worker learns the job is gone
    assert store.count_by_status() == {"aborted": 2}


def test_overdue_job_fails_with_408_and_names_its_worker(store):
    store.create("j1", "op", {}, {})
    store.claim("j1", "w7", 30)
    assert store.fail_overdue(60) == []
    assert store.fail_overdue(60, now=time.time() + 61) == [("j1", "w7")]
    job = store.get("j1")
    assert job.status == "failed" and job.error_status == 408


def test_job_fields_round_trip(store):
    store.create("j1", "pdf_to_png", {"url": "u", "pages": "0-2"}, {"name": "a.png"})
    claimed = store.claim("j1", "w", 30)
    assert claimed.params == {"url": "u", "pages": "0-2"} and claimed.context == {"name": "a.png"}
    assert claimed.attempts == 1 and claimed.worker == "w" and claimed.started
    store.fail("j1", 442, "damaged")
    job = store.get("j1")
    assert (job.error_status, job.message, job.result) == (442, "damaged", None)
    assert job.finished >= job.started
    assert store.get("missing") is None


def test_durations_are_counted_per_operation_and_outcome(store):
    for index, op in enumerate(["pdf_to_png", "pdf_to_png", "optimize"]):
        store.create(f"j{index}", op, {}, {})
        store.claim(f"j{index}", "w", 30)
        store.succeed(f"j{index}", {"url": "u"})
    stats = store.duration_stats()
    assert stats[("pdf_to_png", "success")].count == 2
    assert stats[("optimize", "success")].count == 1
    assert len(stats[("optimize", "success")].bucket_counts) == len(DURATION_BUCKETS) + 1
    assert stats[("optimize", "success")].total_seconds < 5


def test_old_finished_records_are_deleted(store):
    store.create("j1", "op", {}, {})
    store.create("j2", "op", {}, {})
    store.claim("j1", "w", 30)
    store.succeed("j1", {"url": "u"})
    assert store.delete_finished_before(time.time() - 60) == 0
    assert store.delete_finished_before(time.time() + 1) == 1
    assert store.get("j1") is None and store.get("j2").status == "queued"


def test_worker_registry(store):
    store.worker_heartbeat("h-1", 1, "h", {"job": None, "engines": {"x": {"ready": True}}})
    store.worker_heartbeat("h-2", 2, "h", {"job": "j9", "engines": {}})
    workers = {w["id"]: w for w in store.live_workers(10)}
    assert set(workers) == {"h-1", "h-2"}
    assert workers["h-2"]["job"] == "j9" and workers["h-1"]["engines"]["x"]["ready"]
    store.remove_worker("h-1")
    assert [w["id"] for w in store.live_workers(10)] == ["h-2"]


def test_finished_jobs_forget_their_passwords(store):
    params = {"url": "x", "password": "secret", "httppassword": "also", "pages": "0"}
    store.create("j1", "pdf_to_text", params, {})
    store.forget_secrets("j1")  # still queued: a retry may need them
    assert store.get("j1").params["password"] == "secret"
    store.claim("j1", "w", 30)
    store.succeed("j1", {"url": "u"})
    store.forget_secrets("j1")
    kept = store.get("j1").params
    assert "password" not in kept and "httppassword" not in kept and kept["pages"] == "0"
