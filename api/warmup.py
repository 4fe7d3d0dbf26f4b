"""Doing in a new API process, before its first request, what its first requests would do.

The connection pools are filled with as many connections as requests may run at once
(``api/slots.py``), and the publisher's connection to the broker is opened; otherwise the
first burst's submits wait on Redis and database handshakes. gunicorn calls ``warm_up`` in
each process it starts (``post_worker_init`` in ``gunicorn.conf.py``). Best effort: with Redis
or the database down a step is skipped, and the first request that needs it does it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack

from flask import Flask

from api.extension import CalcExtension

log = logging.getLogger(__name__)


def warm_up(app: Flask) -> list[str]:
    """Run the warm-up steps; answer the names of those that failed."""
    ext: CalcExtension = app.extensions["calc"]
    count = ext.slots.count

    def fill_redis_pool() -> None:  # the rate limiter's too: it shares it (api/limits.py)
        pool = ext.redis.connection_pool
        connections = []
        try:
            for _ in range(count):
                connections.append(pool.get_connection())  # connected when handed out
        finally:
            for connection in connections:
                pool.release(connection)

    def fill_database_pool() -> None:
        with ExitStack() as held:
            for _ in range(count):
                held.enter_context(ext.engine.connect())

    def connect_publisher() -> None:
        with ext.celery.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1)

    def serve_a_request() -> None:  # Flask's, werkzeug's and our request machinery
        app.test_client().get("/api/custom-calculations/openapi.json")

    steps: dict[str, Callable[[], object]] = {
        "redis": fill_redis_pool,
        "database": fill_database_pool,
        "broker": connect_publisher,
        "request": serve_a_request,
    }
    failed = []
    for name, step in steps.items():
        try:
            step()
        except Exception as exc:  # best effort: the requests that need it do it later
            failed.append(name)
            log.info("warm-up step skipped", extra={"step": name, "error": type(exc).__name__})
    return failed
