"""The job table on Redis, shared by every API node and worker of a cluster.

Same rules as the SQLite store (`store.py`): each state change that reads before it writes
(claim, renew, release, finish, abort, the reaper) is one Lua script, so it is atomic on
the Redis server whatever the number of nodes. Layout, under the `docmill:` prefix:

- `job:<id>`: a hash with the job's fields; it expires `JOB_RECORD_SECONDS` after the job ends;
- `queued` (score: created), `working` (score: lease end), `done:<status>` (score: finished):
  sorted sets of job ids, so counts, the reaper and the clean-up never scan every job;
- `workers` (score: last heartbeat) and `worker:<id>`: the worker registry;
- `durations`: the job-duration histogram behind `/metrics`.

Times are the nodes' own clocks (keep them in sync with NTP, as for any cluster); a lease
is tens of seconds, so a skew of a few hundred milliseconds does not matter.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from docmill.errors import ServiceUnavailableError
from docmill.jobs.store import (
    DURATION_BUCKETS,
    JOB_RECORD_SECONDS,
    MAX_ATTEMPTS,
    TERMINAL,
    DurationStats,
    Job,
    JobStore,
)

PREFIX = "docmill:"
WORKER_RECORD_SECONDS = 3600  # a silent worker's record is forgotten after an hour

P = ParamSpec("P")
R = TypeVar("R")


def redis_pool(url: str, decode: bool) -> redis.ConnectionPool:
    """A connection pool that retries a dropped connection a few times before giving up.

    Short timeouts: a node must notice a lost Redis in seconds (and say so in /health),
    not hang a request for minutes.
    """
    return redis.ConnectionPool.from_url(
        url,
        decode_responses=decode,
        socket_connect_timeout=3,
        socket_timeout=10,  # longer than the queue's 1 s blocking pop
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
    )


def unavailable_on_connection_loss(method: Callable[P, R]) -> Callable[P, R]:
    """Turn Redis connection errors into ServiceUnavailableError (503 in the API)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise ServiceUnavailableError(
                f"The job store (Redis) is unreachable: {error}. Retry in a moment."
            ) from error

    return wrapper


# KEYS: job, queued, working. ARGV: id, worker, now, lease_until.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'working', 'worker', ARGV[2], 'lease_until', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSETNX', KEYS[1], 'started', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""

# KEYS: job, working. ARGV: id, worker, lease_until.
_RENEW = """
if redis.call('HGET', KEYS[1], 'status') ~= 'working'
   or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: job, queued, working. ARGV: id, worker.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'working'
   or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then return 0 end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', math.max(attempts - 1, 0))
redis.call('HDEL', KEYS[1], 'worker', 'lease_until')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'created'), ARGV[1])
return 1
"""

# KEYS: job, queued, working, done:<status>, durations.
# ARGV: id, status, message, error_status, result ('' = none), now, ttl, bucket bounds...
# The duration is recorded only for a job a worker finished (it has a start time).
_FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'success' or status == 'failed' or status == 'aborted' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'message', ARGV[3], 'error_status', ARGV[4],
           'finished', ARGV[6])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
redis.call('HDEL', KEYS[1], 'lease_until')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[7])
local started = redis.call('HGET', KEYS[1], 'started')
if started then
  local seconds = math.max(tonumber(ARGV[6]) - tonumber(started), 0)
  local bucket = #ARGV - 7
  for i = 8, #ARGV do
    if seconds <= tonumber(ARGV[i]) then bucket = i - 8; break end
  end
  local op = redis.call('HGET', KEYS[1], 'op')
  local label = op .. '|' .. ARGV[2]
  redis.call('HINCRBY', KEYS[5], label .. '|' .. bucket, 1)
  redis.call('HINCRBYFLOAT', KEYS[5], label .. '|sum', tostring(seconds))
end
return 1
"""

# KEYS: job, queued, working, done:aborted. ARGV: id, now, ttl.
_ABORT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'working' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'aborted', 'message', 'Aborted.', 'finished', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: job, queued, working, done:failed. ARGV: id, now, max attempts, ttl.
# Returns 'requeued', 'failed', or '' when the lease was renewed meanwhile.
_REAP = """
if redis.call('HGET', KEYS[1], 'status') ~= 'working' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return ''
end
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if lease >= tonumber(ARGV[2]) then return '' end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
redis.call('ZREM', KEYS[3], ARGV[1])
if attempts < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'status', 'queued')
  redis.call('HDEL', KEYS[1], 'worker', 'lease_until')
  redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'created'), ARGV[1])
  return 'requeued'
end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error_status', 500, 'finished', ARGV[2],
  'message', 'The worker running this job stopped (crashed or was killed) ' .. attempts ..
  ' times; the job was given up.')
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'failed'
"""

# KEYS: job, working, done:failed. ARGV: id, started before, now, message, ttl.
# Returns the worker that ran the job, or false if it was not overdue (any more).
_OVERDUE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'working' then return false end
local started = tonumber(redis.call('HGET', KEYS[1], 'started') or '0')
if started >= tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error_status', 408, 'finished', ARGV[3],
           'message', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call('HGET', KEYS[1], 'worker') or ''
"""


class RedisJobStore(JobStore):
    backend = "redis"

    def __init__(self, url: str, prefix: str = PREFIX,
                 record_seconds: int = JOB_RECORD_SECONDS) -> None:
        self.url = url
        self.prefix = prefix
        self.record_seconds = record_seconds
        self.redis = redis.Redis(connection_pool=redis_pool(url, decode=True))
        self._claim = self.redis.register_script(_CLAIM)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._finish_script = self.redis.register_script(_FINISH)
        self._abort = self.redis.register_script(_ABORT)
        self._reap = self.redis.register_script(_REAP)
        self._overdue = self.redis.register_script(_OVERDUE)

    # -- keys ----------------------------------------------------------------------------
    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _done_key(self, status: str) -> str:
        return f"{self.prefix}done:{status}"

    # -- jobs ----------------------------------------------------------------------------
    @unavailable_on_connection_loss
    def create(self, job_id: str, op: str, params: dict[str, Any], context: dict) -> Job:
        job = Job(job_id, op, params, "queued", created=time.time(), context=context)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._job_key(job_id), mapping={
                "op": op, "params": json.dumps(params), "status": "queued", "message": "",
                "error_status": 0, "created": repr(job.created), "attempts": 0,
                "context": json.dumps(context),
            })
            pipe.zadd(self._key("queued"), {job_id: job.created})
            pipe.execute()
        return job

    @unavailable_on_connection_loss
    def get(self, job_id: str) -> Job | None:
        fields = self.redis.hgetall(self._job_key(job_id))
        return _job_from_hash(job_id, fields) if fields.get("status") else None

    @unavailable_on_connection_loss
    def claim(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        now = time.time()
        claimed = self._claim(
            keys=[self._job_key(job_id), self._key("queued"), self._key("working")],
            args=[job_id, worker, repr(now), repr(now + lease_seconds)],
        )
        return self.get(job_id) if claimed == 1 else None

    @unavailable_on_connection_loss
    def renew_lease(self, job_id: str, worker: str, lease_seconds: float) -> bool:
        renewed = self._renew(
            keys=[self._job_key(job_id), self._key("working")],
            args=[job_id, worker, repr(time.time() + lease_seconds)],
        )
        return renewed == 1

    @unavailable_on_connection_loss
    def release(self, job_id: str, worker: str) -> None:
        self._release(
            keys=[self._job_key(job_id), self._key("queued"), self._key("working")],
            args=[job_id, worker],
        )

    def succeed(self, job_id: str, result: dict[str, Any]) -> None:
        self._finish(job_id, "success", "", 0, result)

    def fail(self, job_id: str, error_status: int, message: str) -> None:
        self._finish(job_id, "failed", message, error_status, None)

    @unavailable_on_connection_loss
    def forget_secrets(self, job_id: str) -> None:
        key = self._job_key(job_id)
        status, raw = self.redis.hmget(key, ["status", "params"])
        if status not in ("success", "failed", "aborted") or not raw:
            return
        params = json.loads(raw)
        removed = [params.pop(name, None) for name in ("password", "httppassword")]
        if any(value is not None for value in removed):
            self.redis.hset(key, "params", json.dumps(params))

    @unavailable_on_connection_loss
    def _finish(
        self, job_id: str, status: str, message: str, error_status: int, result: dict | None
    ) -> None:
        self._finish_script(
            keys=[self._job_key(job_id), self._key("queued"), self._key("working"),
                  self._done_key(status), self._key("durations")],
            args=[job_id, status, message, error_status, json.dumps(result) if result else "",
                  repr(time.time()), self.record_seconds, *DURATION_BUCKETS],
        )

    @unavailable_on_connection_loss
    def abort(self, job_id: str) -> bool:
        aborted = self._abort(
            keys=[self._job_key(job_id), self._key("queued"), self._key("working"),
                  self._done_key("aborted")],
            args=[job_id, repr(time.time()), self.record_seconds],
        )
        return aborted == 1

    @unavailable_on_connection_loss
    def requeue_expired(self, now: float | None = None) -> tuple[list[str], list[str]]:
        now = time.time() if now is None else now
        requeued, failed = [], []
        for job_id in self.redis.zrangebyscore(self._key("working"), "-inf", f"({now!r}"):
            outcome = self._reap(
                keys=[self._job_key(job_id), self._key("queued"), self._key("working"),
                      self._done_key("failed")],
                args=[job_id, repr(now), MAX_ATTEMPTS, self.record_seconds],
            )
            if outcome == "requeued":
                requeued.append(job_id)
            elif outcome == "failed":
                failed.append(job_id)
        return requeued, failed

    @unavailable_on_connection_loss
    def fail_overdue(self, max_runtime: float, now: float | None = None) -> list[tuple[str, str]]:
        now = time.time() if now is None else now
        message = (f"The job ran longer than the limit of {max_runtime:.0f} s and was stopped.")
        overdue = []
        for job_id in self.redis.zrange(self._key("working"), 0, -1):
            worker = self._overdue(
                keys=[self._job_key(job_id), self._key("working"), self._done_key("failed")],
                args=[job_id, repr(now - max_runtime), repr(now), message, self.record_seconds],
            )
            if worker is not None:
                overdue.append((job_id, worker))
        return overdue

    @unavailable_on_connection_loss
    def queued_ids(self) -> list[str]:
        return list(self.redis.zrange(self._key("queued"), 0, -1))

    @unavailable_on_connection_loss
    def count_by_status(self) -> dict[str, int]:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._key("queued"))
            pipe.zcard(self._key("working"))
            for status in TERMINAL:
                pipe.zcard(self._done_key(status))
            counts = pipe.execute()
        statuses = ("queued", "working", *TERMINAL)
        return {status: n for status, n in zip(statuses, counts, strict=True) if n}

    @unavailable_on_connection_loss
    def delete_finished_before(self, cutoff: float) -> int:
        deleted = 0
        for status in TERMINAL:
            key = self._done_key(status)
            ids = self.redis.zrangebyscore(key, "-inf", f"({cutoff!r}")
            if not ids:
                continue
            with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.delete(self._job_key(job_id))
                pipe.zrem(key, *ids)
                pipe.execute()
            deleted += len(ids)
        return deleted

    @unavailable_on_connection_loss
    def duration_stats(self) -> dict[tuple[str, str], DurationStats]:
        stats: dict[tuple[str, str], DurationStats] = {}
        for field, value in self.redis.hgetall(self._key("durations")).items():
            op, status, bucket = field.rsplit("|", 2)
            entry = stats.setdefault(
                (op, status), DurationStats([0] * (len(DURATION_BUCKETS) + 1))
            )
            if bucket == "sum":
                entry.total_seconds = float(value)
            else:
                entry.bucket_counts[int(bucket)] += int(value)
        return stats

    # -- workers -------------------------------------------------------------------------
    @unavailable_on_connection_loss
    def worker_heartbeat(self, worker: str, pid: int, host: str, state: dict) -> None:
        now = time.time()
        key = self._key(f"worker:{worker}")
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"pid": pid, "host": host, "heartbeat": repr(now),
                                    "state": json.dumps(state)})
            pipe.hsetnx(key, "started", repr(now))
            pipe.expire(key, WORKER_RECORD_SECONDS)
            pipe.zadd(self._key("workers"), {worker: now})
            pipe.execute()

    @unavailable_on_connection_loss
    def remove_worker(self, worker: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(f"worker:{worker}"))
            pipe.zrem(self._key("workers"), worker)
            pipe.execute()

    @unavailable_on_connection_loss
    def live_workers(self, max_age: float) -> list[dict[str, Any]]:
        cutoff = time.time() - max_age
        self.redis.zremrangebyscore(self._key("workers"), "-inf", f"({cutoff - 3600!r}")
        ids = self.redis.zrangebyscore(self._key("workers"), cutoff, "+inf")
        with self.redis.pipeline(transaction=False) as pipe:
            for worker in ids:
                pipe.hgetall(self._key(f"worker:{worker}"))
            records = pipe.execute()
        return [
            {"id": worker, "pid": int(record["pid"]), "host": record["host"],
             "heartbeat": float(record["heartbeat"]), **json.loads(record["state"])}
            for worker, record in zip(ids, records, strict=True)
            if record.get("state")
        ]

    # -- health --------------------------------------------------------------------------
    @unavailable_on_connection_loss
    def ping(self) -> None:
        self.redis.ping()


def _optional_float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _job_from_hash(job_id: str, fields: dict[str, str]) -> Job:
    return Job(
        id=job_id,
        op=fields["op"],
        params=json.loads(fields["params"]),
        status=fields["status"],
        message=fields.get("message", ""),
        error_status=int(fields.get("error_status") or 0),
        created=float(fields["created"]),
        started=_optional_float(fields.get("started")),
        finished=_optional_float(fields.get("finished")),
        attempts=int(fields.get("attempts") or 0),
        worker=fields.get("worker") or None,
        lease_until=_optional_float(fields.get("lease_until")),
        result=json.loads(fields["result"]) if fields.get("result") else None,
        context=json.loads(fields.get("context") or "{}"),
    )
