"""``GET /health``: the database, Redis and live workers, answered within 2 seconds."""

from __future__ import annotations

from flask import Blueprint

from api.extension import calc
from db.health import ping as database_ok
from workers.health import live_workers, redis_ok

bp = Blueprint("health", __name__, url_prefix="/api/custom-calculations")


@bp.get("/health")
def health():
    ext = calc()
    redis_up = redis_ok(ext.redis)
    checks = {
        "database": "ok" if database_ok(ext.engine) else "unavailable",
        "redis": "ok" if redis_up else "unavailable",
        "workers": _live_workers() if redis_up else 0,
    }
    healthy = checks["database"] == "ok" and checks["redis"] == "ok" and checks["workers"] > 0
    return {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503


def _live_workers() -> int:
    # Collecting the workers' replies is half a second of waiting: other requests run meanwhile.
    with calc().slots.released():
        return live_workers(calc().celery, timeout=0.5)
