"""Submitting a job: its record first, then the task; idempotent retries by key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from workers.celery_app import app
from workers.jobstore import PREFIX, Job, JobSpec, JobStore, owner_key
from workers.task_messages import RunJobMessages, publish_run_job

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_RUN_JOB_MESSAGES = RunJobMessages(app)


class IdempotencyConflict(Exception):
    """The same Idempotency-Key was used with another body."""


def body_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submit's answer: the job's id and, when this submit made it, the job as queued."""

    job_id: str
    queued: Job | None  # None: an earlier job, answered for a replayed idempotency key


def prepare_submit() -> None:
    """Render the task message template now (it imports the task modules), so that the
    first submit of a new process does not (``api.warmup``); needs Redis."""
    _RUN_JOB_MESSAGES.prepare()


def submit_job(
    spec: JobSpec,
    *,
    store: JobStore,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    max_active: int | None = None,
) -> Submitted:
    """Queue ``spec`` and answer its job id and the job as queued (or, for a replayed
    idempotency key, the earlier job's id alone; the same key with another body is
    ``IdempotencyConflict``).

    The job's Redis record and its task message are written together, in one script
    (``workers.task_messages``), and the Celery task id is the job id. With ``max_active``,
    an owner already at that many queued or running jobs gets ``TooManyActiveJobs``.
    Whatever fails, nothing half-made is left behind. The audit row is written by the
    worker that starts the job (``workers.jobs.start_job``), which keeps the database's
    write lock off the submit path.
    """
    return _enqueue(spec, store, idempotency_key, fingerprint, max_active)


def _enqueue(
    spec: JobSpec,
    store: JobStore,
    idempotency_key: str | None,
    fingerprint: str,
    max_active: int | None,
) -> Submitted:
    key = None
    if idempotency_key is not None:
        digest = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()
        key = f"{PREFIX}:idem:{owner_key(spec.owner)}:{digest}"
        claim = json.dumps({"job_id": spec.job_id, "fingerprint": fingerprint})
        if not store.r.set(key, claim, nx=True, ex=IDEMPOTENCY_TTL_SECONDS):
            raw = store.r.get(key)
            if raw is not None:
                previous = json.loads(raw)
                if previous["fingerprint"] != fingerprint:
                    raise IdempotencyConflict("this Idempotency-Key was used with another body")
                return Submitted(previous["job_id"], None)
    try:
        # Every job is listed among its owner's active ones: that is also how the periodic
        # watchdog finds jobs whose workers died. Its task message goes with its record.
        task = _RUN_JOB_MESSAGES.for_job(spec.job_id)
        queued = store.create(spec, active_limit=max_active, push=task)
        if task is None:
            publish_run_job(spec.job_id)
    except BaseException:
        store.discard(spec.job_id, spec.owner)
        if key is not None:
            store.r.delete(key)
        raise
    return Submitted(spec.job_id, queued)
