"""The caller's recent jobs: live ones from Redis, older ones from the audit trail.

Redis keeps a job for 24 hours; the ``executions`` table keeps every job. The list is the
union, newest first, each job shown from Redis while it is there (with its progress and
error) and from its audit row after that.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.audit import recent_executions
from db.models import Execution
from workers.jobstore import MAX_JOBS_LISTED, JobStore
from workers.jobview import iso_datetime


def recent_jobs(
    *,
    store: JobStore,
    session: Session,
    owner: str | None,
    limit: int,
    offset: int = 0,
    status: str | None = None,
    script_id: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the owner's jobs, newest first (with ``status``/``script_id`` when given),
    and how many there are in all. A live job is shown (and filtered) as Redis has it."""
    loaded = store.list_for(owner, limit=MAX_JOBS_LISTED)
    live = [
        job
        for job in loaded
        if (status is None or job.fields.get("status") == status)
        and (script_id is None or job.fields.get("script_id") == str(script_id))
    ]
    every_live = [job.id for job in loaded]  # (an expired one's audit row stands for it)
    rows, audited = recent_executions(
        user_id=owner,
        session=session,
        limit=offset + limit,
        status=status,
        script_id=script_id,
        excluding=every_live,
    )
    listed: list[tuple[float, Any]] = [(float(job.fields["created_at"]), job) for job in live]
    listed += [(row.created_at.timestamp(), row) for row in rows]
    listed.sort(key=lambda pair: pair[0], reverse=True)
    page = [
        item.to_public() if hasattr(item, "to_public") else from_audit(item)
        for _, item in listed[offset : offset + limit]
    ]
    return page, len(live) + audited


def from_audit(row: Execution) -> dict[str, Any]:
    """A job whose live record expired, as far as its audit row tells."""
    finished = row.status not in ("queued", "running")
    return {
        "job_id": row.job_id,
        "status": row.status,
        "script_id": row.script_id,
        "progress": {"done": row.symbol_count if finished else 0, "total": row.symbol_count},
        "error": None,
        "cache_hits": 0,
        # Its tallies and provenance lived with the job in Redis; the row keeps its code's hash.
        "errors_by_type": None,
        "warnings": None,
        "provenance": None,
        "created_at": iso_datetime(row.created_at),
        "started_at": iso_datetime(row.started_at),
        "finished_at": iso_datetime(row.finished_at),
        "duration_ms": row.duration_ms,
    }
