"""A new API process warms up before its first request, and never fails to start for it."""

from __future__ import annotations

import time

from api.warmup import warm_up


def test_warm_up_connects_the_publisher_to_the_broker(app):
    assert warm_up(app) == []
    with app.extensions["calc"].celery.producer_or_acquire() as producer:
        assert producer.connection.connected  # the first submit does not wait for it


def test_warm_up_opens_as_many_connections_as_requests_may_run_at_once(app):
    ext = app.extensions["calc"]
    (limiter,) = app.extensions["limiter"]
    pool = ext.redis.connection_pool
    assert limiter.storage.storage.connection_pool is pool  # one pool for both
    ext.engine.dispose()
    pool.disconnect()
    assert warm_up(app) == []
    assert ext.engine.pool.checkedin() == ext.slots.count
    # (redis-py keeps no public count of a pool's idle connections.)
    idle = [c for c in pool._available_connections if c._sock is not None]
    assert len(idle) == ext.slots.count


def test_warm_up_with_redis_and_the_database_down_skips_them_quickly(settings, make_app):
    down = settings.with_overrides(
        redis_url="redis://127.0.0.1:1/0",
        database_url="postgresql://postgres@127.0.0.1:1/none",
    )
    app = make_app(down)
    started = time.monotonic()
    failed = warm_up(app)
    assert {"redis", "database", "broker"} <= set(failed)
    assert "request" not in failed  # the app itself still answers
    assert time.monotonic() - started < 10
