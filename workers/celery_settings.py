"""Every Celery setting we use, derived from our own settings (no I/O, no environment).

``celeryconfig`` applies them to the worker's app; ``workers.publisher`` to the API's.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from settings import Settings

# The longest hard limit of any task, in seconds; the visibility timeout must outlast it.
TASK_HARD_LIMIT_SECONDS = 300


def celery_options(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for ``settings``."""
    return {
        "broker_url": settings.redis_url,
        "result_backend": None,  # results live in our job store, not Celery's backend
        "task_ignore_result": True,
        # JSON only on the broker: a pickle there would let anyone who can write to
        # Redis run code in our workers.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # Late acks + reject on worker loss: a chunk whose worker dies is redelivered;
        # chunks are idempotent (each outcome written once), so that is safe.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": TASK_HARD_LIMIT_SECONDS - 30,
        "task_time_limit": TASK_HARD_LIMIT_SECONDS,
        # Redis redelivers a message not acked within the visibility timeout; it must be
        # longer than the longest task, or a slow chunk would run twice at once.
        "broker_transport_options": {"visibility_timeout": TASK_HARD_LIMIT_SECONDS * 4},
        # Fail fast when Redis is down, so the API can answer 503 within its budget.
        "broker_connection_timeout": 1.5,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.3,
        },
        "worker_send_task_events": True,
        "task_send_sent_event": False,  # one publish per task, not two; workers still send events
        "worker_max_memory_per_child": 512 * 1024,  # KiB: recycle a bloated worker process
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            "enqueue-due-scripts": {
                "task": "calc.enqueue_due_scripts",
                "schedule": crontab(),  # every minute, on the minute
                "options": {"expires": 55},  # a tick not run within the minute is dropped
            },
            "sweep-overdue-jobs": {
                "task": "calc.sweep_overdue_jobs",
                "schedule": 30.0,
                "options": {"expires": 25},
            },
        },
        "calc_settings": settings,
    }
