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
        try:
            data = read_all(self.client)
            depth = queue_depth(self.client)
        except redis.RedisError:
            data = None
        up = "Whether Redis answered this scrape"
        yield _one(GaugeMetricFamily, "calc_redis_up", up, 0 if data is None else 1)
        if data is None:
            return
        yield _by_label(
            "calc_jobs_finished", "Finished jobs by final status", "status", data["jobs"]
        )
        processed = data["symbols"].get("processed", 0)
        yield _one(
            CounterMetricFamily, "calc_symbols_processed", "Symbols in finished jobs", processed
        )
        yield _by_label(
            "calc_symbol_errors", "Per-symbol errors by type", "type", data["symbol_errors"]
        )
        d = data["duration"]
        buckets = [(repr(b), float(d.get(repr(b), 0))) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", float(d.get("+Inf", 0))))
        duration = HistogramMetricFamily(
            "calc_job_duration_seconds", "Job duration from start to finish"
        )
        duration.add_metric([], buckets, sum_value=float(d.get("sum", 0)))
        yield duration
        yield _one(
            GaugeMetricFamily, "calc_queue_depth", "Tasks waiting in the Celery queue", depth
        )


def _one(
    kind: type[GaugeMetricFamily | CounterMetricFamily], name: str, doc: str, value: float | str
) -> Metric:
    """A family of one unlabelled sample."""
    family = kind(name, doc)
    family.add_metric([], float(value))
    return family


def _by_label(name: str, doc: str, label: str, counts: dict[str, str]) -> CounterMetricFamily:
    """A counter with a sample per value of ``label``, in a stable order."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], float(count))
    return family


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobMetricsCollector(calc().redis))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
