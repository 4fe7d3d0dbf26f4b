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
from workers.jobstore import JobStore
from workers.jobview import iso_datetime


def recent_jobs(
    *, store: JobStore, session: Session, owner: str | None, limit: int
) -> list[dict[str, Any]]:
    live = {job.id: job for job in store.list_for(owner, limit=limit)}
    rows = {
        row.job_id: row for row in recent_executions(user_id=owner, session=session, limit=limit)
    }
    listed: list[tuple[float, dict[str, Any]]] = []
    for job in live.values():
        listed.append((float(job.fields["created_at"]), job.to_public()))
    for job_id, row in rows.items():
        if job_id not in live:
            listed.append((row.created_at.timestamp(), from_audit(row)))
    listed.sort(key=lambda pair: pair[0], reverse=True)
    return [body for _, body in listed[:limit]]


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
        "created_at": iso_datetime(row.created_at),
        "started_at": iso_datetime(row.started_at),
        "finished_at": iso_datetime(row.finished_at),
        "duration_ms": row.duration_ms,
    }
