"""``/jobs``: read, list and cancel jobs."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_owner
from api.errors import NotFound
from api.extension import calc, db_session
from api.parsing import parse_query
from api.schemas import JobListQuery
from workers.jobview import Job
from workers.listing import recent_jobs

bp = Blueprint("jobs", __name__, url_prefix="/api/custom-calculations")
JOB_PATH = "/api/custom-calculations/jobs/{}"


def found(job: Job | None, job_id: str) -> Job:
    """``job``, or the 404 API.md gives for a job unknown, expired or someone else's."""
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def owned_job(job_id: str, *, with_results: bool = True) -> Job:
    """The caller's job ``job_id`` as stored now (404 if it is not the caller's)."""
    return found(
        calc().store.load(job_id, owner=current_owner(), with_results=with_results), job_id
    )


def job_response(job_id: str):
    """200 with a finished job, 202 (and ``Location``) with one still under way."""
    job = owned_job(job_id)
    if job.status.finished:
        return job.to_public(), 200
    return queued_response(job)


def queued_response(job: Job):
    """202 and ``Location`` with a job still under way."""
    return job.to_public(), 202, {"Location": JOB_PATH.format(job.id)}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    return owned_job(job_id).to_public()


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str):
    return found(calc().store.cancel(job_id, owner=current_owner()), job_id).to_public()


@bp.get("/jobs")
def list_jobs():
    query = parse_query(JobListQuery)
    items, total = recent_jobs(
        store=calc().store,
        session=db_session(),
        owner=current_owner(),
        limit=query.limit,
        offset=query.offset,
        status=query.status,
        script_id=query.script_id,
    )
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
