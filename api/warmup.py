"""Doing in a new API process, before its first request, what its first requests would do.

Measured here: in the first burst after a start, a quarter of the API's CPU went on importing
the task modules and rendering the task message template (``workers.task_messages``) on the
first submits, which every submit behind them waited for. gunicorn calls ``warm_up`` in each
process it starts (``post_worker_init`` in ``gunicorn.conf.py``). Best effort: with Redis or
the database down a step is skipped, and the first request that needs it does it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

from api.extension import CalcExtension
from workers.submit import prepare_submit

log = logging.getLogger(__name__)


def warm_up(app: Flask) -> list[str]:
    """Run the warm-up steps; answer the names of those that failed."""
    ext: CalcExtension = app.extensions["calc"]

    def connect_database() -> None:
        with ext.engine.connect():
            pass

    def serve_a_request() -> None:  # Flask's, werkzeug's and our request machinery
        app.test_client().get("/api/custom-calculations/openapi.json")

    steps: dict[str, Callable[[], object]] = {
        "redis": ext.redis.ping,
        "database": connect_database,
        "task message": prepare_submit,
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
