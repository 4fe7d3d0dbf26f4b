"""The audit trail (``executions``) and the durable runs of saved scripts (``script_runs``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CustomScript, Execution, ScriptRun


def record_submitted(
    *,
    job_id: str,
    user_id: str | None,
    script_id: int | None,
    code_sha256: str,
    symbol_count: int,
    created_at: dt.datetime,
    source: str,
    session: Session,
    kind: str = "execute",
) -> None:
    """The row of a job as it is queued; ``record_finished`` completes it."""
    if session.get(Execution, job_id) is not None:
        return
    session.add(
        Execution(
            job_id=job_id,
            user_id=user_id,
            script_id=script_id,
            code_sha256=code_sha256,
            symbol_count=symbol_count,
            status="queued",
            error_count=0,
            created_at=created_at,
            source=source,
            kind=kind,
        )
    )
    session.flush()


def record_finished(
    *,
    job_id: str,
    user_id: str | None,
    script_id: int | None,
    code_sha256: str,
    symbol_count: int,
    source: str,
    status: str,
    created_at: dt.datetime,
    started_at: dt.datetime | None,
    finished_at: dt.datetime,
    duration_ms: int | None,
    results: dict[str, Any],
    errors: dict[str, Any],
    session: Session,
    kind: str = "execute",
    error_count: int | None = None,
) -> None:
    """Complete the audit row (made here if the submit's row is missing) and, for a saved
    script that still exists, store the run with its results (an evaluation is no run:
    ``GET /scripts/{id}/results`` stays the script's newest execution)."""
    record_submitted(
        job_id=job_id,
        user_id=user_id,
        script_id=script_id,
        code_sha256=code_sha256,
        symbol_count=symbol_count,
        created_at=created_at,
        source=source,
        session=session,
        kind=kind,
    )  # (nothing when the submit's row is there)
    row = session.get(Execution, job_id)
    row.status = status
    row.error_count = len(errors) if error_count is None else error_count
    row.started_at = started_at
    row.finished_at = finished_at
    row.duration_ms = duration_ms
    if kind == "execute" and script_id is not None and session.get(CustomScript, script_id):
        exists = session.scalar(select(ScriptRun.id).where(ScriptRun.job_id == job_id))
        if exists is None:
            session.add(
                ScriptRun(
                    script_id=script_id,
                    job_id=job_id,
                    user_id=user_id,
                    source=source,
                    status=status,
                    code_sha256=code_sha256,
                    finished_at=finished_at,
                    results=results,
                    errors=errors,
                )
            )
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
