"""The job table: claims, leases, retry once after a lost worker, then failure."""

import time

from docmill.jobs.store import JobStore


def test_claim_only_once(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    store.create("j1", "pdf_to_text", {"url": "x"}, {})
    assert store.claim("j1", "w1", 30).status == "working"
    assert store.claim("j1", "w2", 30) is None


def test_lost_worker_retried_once_then_failed(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    store.create("j1", "pdf_to_text", {}, {})
    store.claim("j1", "w1", lease_seconds=0)
    requeued, failed = store.requeue_expired(now=time.time() + 1)
    assert requeued == ["j1"] and not failed
    assert store.get("j1").status == "queued"
    store.claim("j1", "w2", lease_seconds=0)
    requeued, failed = store.requeue_expired(now=time.time() + 1)
    assert failed == ["j1"]
    job = store.get("j1")
    assert job.status == "failed" and "killed" in job.message


def test_finish_is_final(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    store.create("j1", "op", {}, {})
    store.claim("j1", "w", 30)
    store.succeed("j1", {"url": "u"})
    store.fail("j1", 500, "late")
    assert store.get("j1").status == "success" and store.get("j1").result == {"url": "u"}
    assert not store.abort("j1")


def test_release_gives_the_attempt_back(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    store.create("j1", "op", {}, {})
    store.claim("j1", "w", 30)
    store.release("j1", "w")
    job = store.get("j1")
    assert job.status == "queued" and job.attempts == 0
