"""The API's Celery client: it sends tasks by name and pings workers, and runs nothing.

It knows no task and imports none of the worker's modules (``send_task``, as Celery's guide
has it for a process that only publishes), so the API configures nothing of the workers.
"""

from __future__ import annotations

from celery import Celery

from settings import Settings
from workers.celery_settings import celery_options


def make_publisher(settings: Settings) -> Celery:
    app = Celery("calc", set_as_current=False)
    app.conf.update(celery_options(settings))
    return app
