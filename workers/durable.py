"""Copying a finished job from Redis into the database: the audit row and a saved script's run.

Called by whoever wins the right to finish a job (a worker, the watchdog, or a cancel),
so it runs exactly once per job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import redis
from sqlalchemy.engine import Engine

from db.audit import AuditedJob, record_finished
from db.session import session_scope
from logconfig import job_fields
from settings import Settings
from workers.jobstore import JobStore
from workers.jobview import Job
from workers.metrics import observe_finished

log = logging.getLogger(__name__)


def durable_store(client: redis.Redis, settings: Settings, engine: Engine) -> JobStore:
    """The job store whose finished jobs are copied into the database at ``engine``."""
    return JobStore(
        client,
        ttl_seconds=settings.job_ttl_seconds,
        queue_timeout=settings.queue_timeout_seconds,
        on_finish=lambda store, job: after_finish(store, job, engine),
    )


def _when(raw: str | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(float(raw), tz=dt.UTC) if raw else None


def after_finish(store: JobStore, job: Job, engine: Engine) -> None:
    """Everything that follows a job's end, once: metrics, the audit row, a saved script's run."""
    job_id = job.id
    # A saved script's run keeps its results; otherwise the audit row needs only the summary.
    public = job.to_public() if job.fields.get("script_id") else job.summary()
    try:
        observe_finished(store.r, public)
    except redis.RedisError:
        log.warning("job metrics not recorded", extra=job_fields(job_id))
    record_job(job, public, engine)


def record_job(job: Job, public: dict, engine: Engine) -> None:
    """Write the finished job's audit row and run; a database outage is logged, not raised."""
    f = job.fields
    job_id = f["job_id"]
    try:
        with session_scope(engine) as session:
            audited = AuditedJob(
                job_id=job_id,
                user_id=f.get("owner") or None,
                script_id=int(f["script_id"]) if f.get("script_id") else None,
                code_sha256=f["code_sha256"],
                symbol_count=int(f["total"]),
                created_at=_when(f["created_at"]),
                source=f.get("source", "api"),
                kind=job.kind,
            )
            record_finished(
                audited,
                status=public["status"],
                started_at=_when(f.get("started_at")),
                finished_at=_when(f.get("finished_at")) or dt.datetime.now(dt.UTC),
                duration_ms=public["duration_ms"],
                results=public.get("results") or {},
                errors=public.get("errors") or {},
                session=session,
                error_count=_evaluation_errors(job) if job.kind == "evaluation" else None,
            )
    except Exception:  # the job itself is finished in Redis; losing its audit copy is logged
        log.exception("job not recorded in the database", extra=_fields(job))
    else:
        log.info(
            "job finished",
            extra=_fields(
                job,
                status=public["status"],
                symbols=public["progress"]["total"],
                errors=len(public.get("errors") or {}),
                duration_ms=public["duration_ms"],
            ),
        )


def _evaluation_errors(job: Job) -> int:
    """An evaluation's failed runs, from its figures (its panel is not read again here)."""
    raw = job.fields.get("evaluation")
    evaluation = json.loads(raw) if raw else None
    return sum((evaluation or {}).get("errors_by_type", {}).values())


def _fields(job: Job, **more: object) -> dict[str, object]:
    f = job.fields
    script_id = int(f["script_id"]) if f.get("script_id") else None
    return job_fields(
        job.id,
        script_id=script_id,
        user=f.get("owner") or None,
        source=f.get("source", "api"),
        **more,
    )
