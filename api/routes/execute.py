"""``POST /execute`` and ``POST /validate``."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_owner
from api.extension import calc
from api.parsing import parse_body
from api.schemas import ExecuteRequest, ValidateRequest
from api.submitting import check_code_size, code_to_run, job_spec, submit_and_answer
from sandbox.compiler import compile_script
from workers.jobspec import JobSpec

bp = Blueprint("execute", __name__, url_prefix="/api/custom-calculations")


@bp.post("/validate")
def validate():
    body = parse_body(ValidateRequest)
    check_code_size(body.code, calc().settings.max_code_bytes)
    compile_script(body.code)
    return {"valid": True}


@bp.post("/execute")
def execute():
    body = parse_body(ExecuteRequest)
    return submit_and_answer(_job_spec(body, current_owner()), body, wait=body.wait)


def _job_spec(body: ExecuteRequest, owner: str | None) -> JobSpec:
    settings = calc().settings
    return job_spec(
        body,
        owner,
        code_to_run(body.script, body.script_id, owner),
        symbols=body.symbols,
        as_of=body.as_of.isoformat() if body.as_of else None,
        wall_seconds=min(body.timeout or settings.job_wall_seconds, settings.max_job_wall_seconds),
        cross_section=body.cross_section.model_dump() if body.cross_section else None,
    )
