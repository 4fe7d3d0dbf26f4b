"""``GET /jobs/{id}/results.csv`` and ``/jobs/{id}/panel.csv``: streamed CSV (API.md, Exports)."""

from __future__ import annotations

from flask import Blueprint, Response, stream_with_context

from api.errors import Conflict
from api.extension import calc
from api.routes.jobs import owned_job
from workers.exports import panel_csv, results_csv
from workers.jobview import Job

bp = Blueprint("exports", __name__, url_prefix="/api/custom-calculations")


def _finished(job_id: str, kind: str, *, with_results: bool) -> Job:
    job = owned_job(job_id, with_results=with_results)
    if job.kind != kind:
        message = f"job {job_id} is an {job.kind} job; this export is of {kind} jobs"
        raise Conflict(message, {"job_id": f"not an {kind} job"})
    if not job.status.finished:
        message = f"job {job_id} is not finished ({job.status.value})"
        raise Conflict(message, {"job_id": "not finished"})
    return job


def _csv(blocks, name: str) -> Response:
    return Response(
        stream_with_context(blocks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/jobs/<job_id>/results.csv")
def results(job_id: str):
    job = _finished(job_id, "execute", with_results=True)
    return _csv(results_csv(job), f"{job.id}-results.csv")


@bp.get("/jobs/<job_id>/panel.csv")
def panel(job_id: str):
    job = _finished(job_id, "evaluation", with_results=False)
    return _csv(panel_csv(calc().store, job), f"{job.id}-panel.csv")
