"""Submitting a job: its record first, then the task; idempotent retries by key."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.audit import forget_submitted, record_submitted
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
    session: Session | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    max_active: int | None = None,
) -> str:
    """Queue ``spec`` and answer its job id (or, for a replayed idempotency key, the earlier
    job's id; the same key with another body is ``IdempotencyConflict``).

    With a ``session``, the audit row is committed first: a database outage then fails the
    submit with nothing queued, and a worker finishing the job always finds the row to
    complete. The job's Redis record exists before its task is queued, and the Celery task
    id is the job id. With ``max_active``, an owner already at that many queued or running
    jobs gets ``TooManyActiveJobs``. Whatever fails, nothing half-made is left behind.
    """
    if session is not None:
        _record(spec, session)
    try:
        job_id = _enqueue(spec, store, idempotency_key, fingerprint, max_active)
    except BaseException:
        if session is not None:
            forget_submitted(spec.job_id, session=session)
        raise
    if session is not None and job_id != spec.job_id:  # a replay: the earlier job answers
        forget_submitted(spec.job_id, session=session)
    return job_id


def _record(spec: JobSpec, session: Session) -> None:
    record_submitted(
        job_id=spec.job_id,
        user_id=spec.owner,
        script_id=spec.script_id,
        code_sha256=spec.code_sha256,
        symbol_count=len(spec.symbols),
        created_at=datetime.now(UTC),
        source=spec.source,
        session=session,
    )
    session.commit()


def _enqueue(
    spec: JobSpec,
    store: JobStore,
    idempotency_key: str | None,
    fingerprint: str,
    max_active: int | None,
) -> str:
    from workers.tasks import run_job

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
                return previous["job_id"]
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
    return spec.job_id
