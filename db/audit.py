"""The audit trail (``executions``) and the durable runs of saved scripts (``script_runs``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CustomScript, Execution, ScriptRun


@dataclass(frozen=True, slots=True)
class AuditedJob:
    """What the audit row and a saved script's run know of a job from its submit on."""

    job_id: str
    user_id: str | None
    script_id: int | None
    code_sha256: str
    symbol_count: int
    created_at: dt.datetime
    source: str
    kind: str = "execute"


# What a saved script's run keeps of its job (beside how it ended).
_RUN_FIELDS = ("script_id", "job_id", "user_id", "source", "code_sha256")


def record_submitted(job: AuditedJob, *, session: Session) -> None:
    """The row of a job as it is queued; ``record_finished`` completes it."""
    if session.get(Execution, job.job_id) is not None:
        return
    session.add(Execution(**asdict(job), status="queued", error_count=0))
    session.flush()


def record_finished(
    job: AuditedJob,
    *,
    status: str,
    started_at: dt.datetime | None,
    finished_at: dt.datetime,
    duration_ms: int | None,
    results: dict[str, Any],
    errors: dict[str, Any],
    session: Session,
    error_count: int | None = None,
) -> None:
    """Complete the audit row (made here if the submit's row is missing) and, for a saved
    script that still exists, store the run with its results (an evaluation is no run:
    ``GET /scripts/{id}/results`` stays the script's newest execution)."""
    record_submitted(job, session=session)  # (nothing when the submit's row is there)
    row = session.get(Execution, job.job_id)
    row.status = status
    row.error_count = len(errors) if error_count is None else error_count
    row.started_at = started_at
    row.finished_at = finished_at
    row.duration_ms = duration_ms
    script_id = job.script_id
    if job.kind == "execute" and script_id is not None and session.get(CustomScript, script_id):
        exists = session.scalar(select(ScriptRun.id).where(ScriptRun.job_id == job.job_id))
        if exists is None:
            known = {name: getattr(job, name) for name in _RUN_FIELDS}
            run = ScriptRun(
                **known, status=status, finished_at=finished_at, results=results, errors=errors
            )
            session.add(run)
    session.flush()


def latest_run(script_id: int, *, session: Session) -> ScriptRun | None:
    return session.scalar(
        select(ScriptRun)
        .where(ScriptRun.script_id == script_id)
        .order_by(ScriptRun.finished_at.desc(), ScriptRun.id.desc())
        .limit(1)
    )


def recent_executions(
    *,
    user_id: str | None,
    session: Session,
    limit: int,
    status: str | None = None,
    script_id: int | None = None,
    excluding: Sequence[str] = (),
) -> tuple[Sequence[Execution], int]:
    """The user's newest ``limit`` rows (with ``status`` and ``script_id`` when given, and
    none of ``excluding``), and how many such rows there are in all."""
    where = [Execution.user_id.is_(None) if user_id is None else Execution.user_id == user_id]
    if status is not None:
        where.append(Execution.status == status)
    if script_id is not None:
        where.append(Execution.script_id == script_id)
    if excluding:
        where.append(Execution.job_id.not_in(list(excluding)))
    total = session.scalar(select(func.count()).select_from(Execution).where(*where)) or 0
    rows = session.scalars(
        select(Execution).where(*where).order_by(Execution.created_at.desc()).limit(limit)
    ).all()
    return rows, int(total)
