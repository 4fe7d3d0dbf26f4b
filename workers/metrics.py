"""Job metrics kept in Redis, so every API process exports the same numbers.

Jobs finish in worker processes, not in the API; per-process Prometheus counters in
gunicorn workers would each see a fraction. Counting in Redis (``HINCRBY``) at the
moment a job finishes, and reading the counts at scrape time, is correct with any
number of API and worker processes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis

from workers.keys import metrics_key
from workers.redis_text import decoded

JOBS = metrics_key("jobs")  # status -> count
SYMBOLS = metrics_key("symbols")  # "processed" -> count
SYMBOL_ERRORS = metrics_key("symbol_errors")  # error type -> count
DURATION = metrics_key("duration")  # bucket upper bound ("+Inf") / "sum" / "count"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def observe_finished(client: redis.Redis, job: dict[str, Any]) -> None:
    """Count one finished job (its public form) in Redis."""
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(JOBS, job["status"], 1)
    pipe.hincrby(SYMBOLS, "processed", job["progress"]["total"])
    kinds = Counter(
        str(err.get("type", "Error"))[:64] for err in (job.get("errors") or {}).values()
    )
    for kind, count in kinds.items():
        pipe.hincrby(SYMBOL_ERRORS, kind, count)
    if job.get("duration_ms") is not None:
        seconds = job["duration_ms"] / 1000
        for bound in DURATION_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(DURATION, repr(bound), 1)
        pipe.hincrby(DURATION, "+Inf", 1)
        pipe.hincrbyfloat(DURATION, "sum", seconds)
    pipe.execute()


def read_all(client: redis.Redis) -> dict[str, dict[str, str]]:
    pipe = client.pipeline(transaction=False)
    for key in (JOBS, SYMBOLS, SYMBOL_ERRORS, DURATION):
        pipe.hgetall(key)
    jobs, symbols, errors, duration = pipe.execute()
    return {
        "jobs": decoded(jobs),
        "symbols": decoded(symbols),
        "symbol_errors": decoded(errors),
        "duration": decoded(duration),
    }


def queue_depth(client: redis.Redis, queue: str = "celery") -> int:
    return int(client.llen(queue))
