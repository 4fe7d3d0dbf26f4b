"""A new API process warms up before its first request, and never fails to start for it."""

from __future__ import annotations

import sys
import time

from api.warmup import warm_up
from workers import submit


def test_warm_up_renders_the_task_message_and_opens_connections(app):
    submit._RUN_JOB_MESSAGES._template = None  # as in a new process
    assert warm_up(app) == []
    assert submit._RUN_JOB_MESSAGES._template is not None
    assert "workers.tasks" in sys.modules


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
    submit._RUN_JOB_MESSAGES._template = None
    started = time.monotonic()
    failed = warm_up(app)
    assert {"redis", "database", "task message"} <= set(failed)
    assert "request" not in failed  # the app itself still answers
    assert time.monotonic() - started < 10
