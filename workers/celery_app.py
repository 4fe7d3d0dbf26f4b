"""The Celery app. Its settings come from ``celeryconfig`` (the environment, once).

``celery -A workers.celery_app worker`` and ``beat`` and ``flower`` use this app;
the API imports it only to send tasks.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from settings import Settings

app = Celery("calc", include=["workers.tasks"])
app.config_from_object("celeryconfig")


def configure(settings: Settings) -> Celery:
    """Point the app at ``settings`` (used by ``create_app`` and tests)."""
    from celeryconfig import celery_options

    app.conf.update(celery_options(settings))
    from workers import runtime

    runtime.configure(settings)
    return app


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    """A forked pool process must not share the parent's sockets."""
    from workers import runtime

    runtime.reset_after_fork()
