"""Holding a request until its job finishes (``POST /execute`` with ``wait``)."""

from __future__ import annotations

import time

from workers.jobstore import JobStore


def wait_finished(store: JobStore, job_id: str, timeout: float) -> None:
    """Block until the job finishes or ``timeout`` passes, woken by pub/sub (no sleep-polling).

    Subscribes before checking the status, so a job finishing in between is not missed.
    """
    end = time.monotonic() + timeout
    pubsub = store.r.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(store.channel(job_id))
        while True:
            status = store.status(job_id)
            if status is None or status.finished:
                return
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            if pubsub.get_message(timeout=min(remaining, 1.0)) is not None:
                return
    finally:
        pubsub.close()
