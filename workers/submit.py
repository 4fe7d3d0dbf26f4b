"""Submitting a job: its record first, then the task; idempotent retries by key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from workers.jobstore import PREFIX, JobSpec, JobStore, owner_key

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
UNLIMITED = 2**31


class IdempotencyConflict(Exception):
    """The same Idempotency-Key was used with another body."""


def body_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def submit_job(
    spec: JobSpec,
    *,
    store: JobStore,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    max_active: int | None = None,
) -> tuple[str, bool]:
    """Queue ``spec``; answer ``(job_id, created)``.

    With an idempotency key already used for the same body, answer that job instead
    (``created`` False). With ``max_active``, an owner already at that many queued or
    running jobs gets ``TooManyActiveJobs`` and nothing is queued. The job's record exists
    before its task is queued, and the Celery task id is the job id. If the broker cannot
    take the task, the record (and the key) are removed and the error propagates.
    """
    from workers.tasks import run_job

    key = None
    if idempotency_key is not None:
        key = f"{PREFIX}:idem:{owner_key(spec.owner)}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"  # noqa: E501
        claim = json.dumps({"job_id": spec.job_id, "fingerprint": fingerprint})
        if not store.r.set(key, claim, nx=True, ex=IDEMPOTENCY_TTL_SECONDS):
            raw = store.r.get(key)
            if raw is not None:
                previous = json.loads(raw)
                if previous["fingerprint"] != fingerprint:
                    raise IdempotencyConflict("this Idempotency-Key was used with another body")
                return previous["job_id"], False
    try:
        # Every job is listed among its owner's active ones: that is also how the periodic
        # watchdog finds jobs whose workers died.
        store.reserve_active(spec, limit=UNLIMITED if max_active is None else max_active)
        store.create(spec)
        run_job.apply_async(args=(spec.job_id,), task_id=spec.job_id)
    except BaseException:
        store.discard(spec.job_id, spec.owner)
        if key is not None:
            store.r.delete(key)
        raise
    return spec.job_id, True
