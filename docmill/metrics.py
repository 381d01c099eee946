"""Prometheus metrics: what an autoscaler and an operator need, read from the shared store.

Every value comes from the job store and the queue at scrape time, so every node (API or
not) reports the same cluster-wide figures and no process keeps counters of its own:
scrape any one node, or all of them and take `max` (never `sum`) across nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from docmill.jobs.store import DURATION_BUCKETS, STATUSES
from docmill.services import Services


class DocmillCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("docmill_backend_up", "1 if the backend answers, else 0.",
                               labels=["component", "backend"])
        yield from self._queue_metrics(up)
        yield from self._store_metrics(up)
        storage = self.services.storage.check()
        up.add_metric(["storage", storage["backend"]], 1.0 if storage["ok"] else 0.0)
        yield up

    def _queue_metrics(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        queue = self.services.queue
        try:
            depth = queue.depth()
        except Exception:  # reported as the backend being down
            up.add_metric(["queue", queue.backend], 0.0)
            return
        up.add_metric(["queue", queue.backend], 1.0)
        yield GaugeMetricFamily("docmill_queue_depth", "Job messages waiting in the queue.",
                                value=depth)

    def _store_metrics(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        store = self.services.store
        try:
            counts = store.count_by_status()
            durations = store.duration_stats()
            workers = store.live_workers(max(10.0, self.services.settings.lease_seconds))
        except Exception:  # reported as the backend being down
            up.add_metric(["store", store.backend], 0.0)
            return
        up.add_metric(["store", store.backend], 1.0)
        jobs = GaugeMetricFamily("docmill_jobs", "Job records by status.", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        yield _duration_histogram(durations)
        yield from _worker_metrics(workers)


def _duration_histogram(durations: dict) -> HistogramMetricFamily:
    histogram = HistogramMetricFamily(
        "docmill_job_duration_seconds",
        "Run time of the jobs workers finished, by operation and outcome.",
        labels=["operation", "status"],
    )
    bounds = [str(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
    for (op, status), stats in sorted(durations.items()):
        cumulative, buckets = 0, []
        for bound, count in zip(bounds, stats.bucket_counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        histogram.add_metric([op, status], buckets, stats.total_seconds)
    return histogram


def _worker_metrics(workers: list[dict[str, Any]]) -> Iterator[Metric]:
    yield GaugeMetricFamily("docmill_workers", "Worker processes with a recent heartbeat.",
                            value=len(workers))
    yield GaugeMetricFamily("docmill_workers_busy", "Workers running a job now.",
                            value=sum(1 for worker in workers if worker.get("job")))
    ready = GaugeMetricFamily("docmill_engine_ready",
                              "Workers whose engine is ready, by engine.", labels=["engine"])
    state = GaugeMetricFamily(
        "docmill_engine_state",
        "Numeric facts the workers report about their engines (e.g. LibreOffice pool "
        "instances, busy, restarts), summed over workers.", labels=["engine", "key"])
    ready_counts: dict[str, int] = {}
    sums: dict[tuple[str, str], float] = {}
    for worker in workers:
        for engine, facts in (worker.get("engines") or {}).items():
            ready_counts[engine] = ready_counts.get(engine, 0) + bool(facts.get("ready"))
            for key, value in facts.items():
                if isinstance(value, bool | int | float):
                    sums[(engine, key)] = sums.get((engine, key), 0.0) + float(value)
    for engine, count in sorted(ready_counts.items()):
        ready.add_metric([engine], count)
    for (engine, key), total in sorted(sums.items()):
        state.add_metric([engine, key], total)
    yield ready
    yield state


def metrics_registry(services: Services) -> CollectorRegistry:
    """A registry of its own per app: no global state shared between servers in one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DocmillCollector(services))
    return registry
