"""What a ``calc.run_next`` token does: take the next entry fairly, and run it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import redis
from celery import Celery
from sqlalchemy.exc import OperationalError

from logconfig import job_fields
from workers.fairqueue import FairQueue, Share, enqueue
from workers.jobs import process_chunk, start_job
from workers.keys import job_key
from workers.redis_text import text
from workers.runtime import Runtime
from workers.task_failure import job_fails_on_error

log = logging.getLogger(__name__)

MAX_SKIPPED = 1000  # finished jobs' entries one token passes over before it gives up
RetryChunk = Callable[[str, int, list[str]], None]


def run_next(token: str, *, rt: Runtime, celery: Celery, retry_chunk: RetryChunk) -> None:
    """Run the entry this token takes (its own again after a redelivery); skip those of jobs
    already ended (cancelled, timed out, expired). A chunk whose data cannot be loaded goes to
    ``retry_chunk`` (``calc.run_chunk``: backoff, then the job fails ``DataUnavailable``)."""
    queue = FairQueue(rt.redis)
    store = rt.store()
    try:
        for _ in range(MAX_SKIPPED):
            entry = queue.take(token)
            if entry is None:
                return
            status = store.status(entry["job"])
            if status is not None and not status.finished:
                break
            queue.done(token)
        else:
            return
        job_id = entry["job"]
        with job_fails_on_error(store, job_id):
            _run_entry(entry, rt=rt, celery=celery, retry_chunk=retry_chunk)
    finally:
        with contextlib.suppress(redis.RedisError):
            queue.done(token)


def _run_entry(entry: dict, *, rt: Runtime, celery: Celery, retry_chunk: RetryChunk) -> None:
    """Start the entry's job or run its chunk, handing the chunk on when another user waits."""
    queue = FairQueue(rt.redis)
    store = rt.store()
    job_id = entry["job"]
    owner = _owner(rt, job_id)

    def send(job: str, chunk_no: int, symbols: list[str]) -> None:
        enqueue(celery, queue, owner, {"job": job, "chunk": chunk_no, "symbols": symbols})

    if entry.get("start"):
        chunk_no, symbols = 0, start_job(job_id, rt=rt, send_chunk=send)
        if not symbols:
            return
    else:
        chunk_no, symbols = int(entry["chunk"]), list(entry["symbols"])

    def give_back(rest: list[str]) -> None:
        store.count_chunk_try(job_id, chunk_no, by=-1)  # a handoff is not a lost delivery
        send(job_id, chunk_no, rest)
        log.info("chunk yields", extra=job_fields(job_id, chunk=chunk_no, rest=len(rest)))

    share = Share(others_waiting=lambda: queue.others_waiting(owner), give_back=give_back)
    try:
        process_chunk(job_id, chunk_no, symbols, rt=rt, share=share)
    except (OperationalError, redis.ConnectionError):
        with contextlib.suppress(redis.RedisError):  # not a lost delivery: a handed-off chunk
            store.count_chunk_try(job_id, chunk_no, by=-1)
        retry_chunk(job_id, chunk_no, symbols)


def _owner(rt: Runtime, job_id: str) -> str | None:
    raw = rt.redis.hget(job_key(job_id), "owner")
    return (text(raw) if raw is not None else None) or None
