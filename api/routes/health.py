"""``GET /health``: the database, Redis and live workers, answered within 2 seconds.

Workers are counted from the heartbeats they keep fresh in Redis (``workers/health.py``): one
read, no broadcast. The two probes run side by side, each bounded: a database or Redis that
hangs (a host gone, not a refused connection) is ``unavailable`` after ``PROBE_SECONDS``.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import redis
from flask import Blueprint

from api.extension import calc
from db.health import ping as database_ok
from workers.health import REFUSED, live_workers

bp = Blueprint("health", __name__, url_prefix="/api/custom-calculations")

PROBE_SECONDS = 1.5
# Shared by the process's requests; a probe stuck on a hung server ends by its own timeouts.
_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-probe")


@bp.get("/health")
def health():
    ext = calc()
    database = _probes.submit(database_ok, ext.engine)
    workers = _probes.submit(_workers_or_none, ext.redis)
    wait((database, workers), timeout=PROBE_SECONDS)  # one deadline for both
    redis_up, count, sandbox = _result(workers, (False, 0, None))
    checks = {
        "database": "ok" if _result(database, False) else "unavailable",
        "redis": "ok" if redis_up else "unavailable",
        "workers": count,
        # The weakest kernel confinement the live workers' sandboxes got (README, Sandbox).
        "sandbox": sandbox or "unknown",
    }
    healthy = checks["database"] == "ok" and redis_up and count > 0 and sandbox != REFUSED
    return {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503


def _workers_or_none(client: redis.Redis) -> tuple[bool, int, str | None]:
    try:
        return True, *live_workers(client)
    except redis.RedisError:
        return False, 0, None


def _result(future: Future, default: Any) -> Any:
    """The probe's answer, or ``default`` when it is still running or failed unexpectedly."""
    if not future.done() or future.exception() is not None:
        return default
    return future.result()
