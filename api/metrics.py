"""``GET /metrics``: Prometheus metrics read from Redis at scrape time (see workers.metrics)."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.extension import calc
from workers.metrics import DURATION_BUCKETS, queue_depth, read_all

bp = Blueprint("metrics", __name__)


class JobMetricsCollector:
    """Turns the Redis counters into Prometheus families on each scrape."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("calc_redis_up", "Whether Redis answered this scrape")
        try:
            data = read_all(self.client)
            depth = queue_depth(self.client)
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = CounterMetricFamily(
            "calc_jobs_finished", "Finished jobs by final status", labels=["status"]
        )
        for status, count in sorted(data["jobs"].items()):
            jobs.add_metric([status], float(count))
        yield jobs
        symbols = CounterMetricFamily("calc_symbols_processed", "Symbols in finished jobs")
        symbols.add_metric([], float(data["symbols"].get("processed", 0)))
        yield symbols
        errors = CounterMetricFamily(
            "calc_symbol_errors", "Per-symbol errors by type", labels=["type"]
        )
        for kind, count in sorted(data["symbol_errors"].items()):
            errors.add_metric([kind], float(count))
        yield errors
        d = data["duration"]
        buckets = [(repr(b), float(d.get(repr(b), 0))) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", float(d.get("+Inf", 0))))
        duration = HistogramMetricFamily(
            "calc_job_duration_seconds", "Job duration from start to finish"
        )
        duration.add_metric([], buckets, sum_value=float(d.get("sum", 0)))
        yield duration
        queue = GaugeMetricFamily("calc_queue_depth", "Tasks waiting in the Celery queue")
        queue.add_metric([], depth)
        yield queue


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobMetricsCollector(calc().redis))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
