"""Celery's settings for the worker, beat and Flower, read from the environment once (an
entry point, like ``create_app``); what each means is in ``workers.celery_settings``.

Lowercase names only: mixing Celery's old upper-case names makes it refuse to start.
"""

from __future__ import annotations

from settings import Settings, SettingsError
from workers.celery_settings import celery_options

try:
    calc_settings = Settings.from_env()
except SettingsError as exc:  # one line and a non-zero exit, not a traceback or a default
    raise SystemExit(f"celery: {exc}") from None
globals().update(celery_options(calc_settings))
# The processes this worker forks: the same setting chunk planning reads
# (``Settings.planned_processes``); ``--concurrency`` on the command line wins.
worker_concurrency = calc_settings.worker_processes
