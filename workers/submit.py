"""Submitting a job: its record first, then its task (by name); idempotent retries by key."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from logconfig import job_fields
from workers.fairqueue import FairQueue, enqueue
from workers.jobspec import JobSpec
from workers.jobstore import JobStore
from workers.jobview import Job

RUN_JOB = "calc.run_job"  # workers.tasks.run_job, published by name

log = logging.getLogger(__name__)


class IdempotencyConflict(Exception):
    """The same Idempotency-Key was used with another body."""


class QueueUnavailable(Exception):
    """The job's task could not be published; nothing of the job is left behind."""


def body_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submit's answer: the job's id and, when this submit made it, the job as queued."""

    job_id: str
    queued: Job | None  # None: an earlier job, answered for a replayed idempotency key


def submit_job(
    spec: JobSpec,
    *,
    store: JobStore,
    celery: Celery,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    max_active: int | None = None,
    max_backlog: int | None = None,
) -> Submitted:
    """Queue ``spec``: its Redis record first, then its start in its owner's fair queue and
    the ``calc.run_next`` token that runs it (``workers.fairqueue``; the token's id starts
    with the job id, as Flower shows it). Answer its id and the job as queued (or,
    for a replayed idempotency key, the earlier job's id alone; the same key with another
    body is ``IdempotencyConflict``).

    With ``max_active``, an owner already at that many queued or running jobs gets
    ``TooManyActiveJobs`` and nothing is written; with ``max_backlog``, a job that would take
    the service's backlog over that many symbols gets ``BacklogFull`` (``workers.backlog``),
    nothing written either. If the task cannot be published the record
    is removed again and the caller gets ``QueueUnavailable``: no job is left that no task
    will run (were Redis to vanish in between, the watchdog fails it as ``NoWorker``). The
    audit row is written by the worker that starts the job (``workers.jobs.start_job``).
    """
    if idempotency_key is not None:
        claim = {"job_id": spec.job_id, "fingerprint": fingerprint}
        previous = store.claim_idempotency(spec.owner, idempotency_key, claim)
        if previous is not None:
            if previous["fingerprint"] != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key was used with another body")
            return Submitted(previous["job_id"], None)
    try:
        queued = store.create(spec, active_limit=max_active, backlog_limit=max_backlog)
    except BaseException:
        if idempotency_key is not None:
            store.release_idempotency(spec.owner, idempotency_key)
        raise
    try:
        enqueue(celery, FairQueue(store.r), spec.owner, {"job": spec.job_id, "start": True})
    except Exception as exc:
        log.warning("task not published", extra=job_fields(spec.job_id, error=type(exc).__name__))
        with contextlib.suppress(redis.RedisError):
            store.discard(spec.job_id, spec.owner)
            if idempotency_key is not None:
                store.release_idempotency(spec.owner, idempotency_key)
        raise QueueUnavailable("the task queue (Redis) cannot be reached") from exc
    return Submitted(spec.job_id, queued)
