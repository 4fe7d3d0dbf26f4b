"""Health probes of the parts the workers own: Redis and live Celery workers."""

from __future__ import annotations

import redis
from celery import Celery


def redis_ok(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def live_workers(app: Celery, timeout: float = 0.5) -> int:
    """How many Celery workers answer a ping within ``timeout`` seconds (0 when none or down)."""
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:
        return 0
    return len(replies)
