"""``POST /execute`` and ``POST /validate``."""

from __future__ import annotations

from flask import Blueprint, request

from api.auth import current_owner
from api.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from api.extension import calc, db_session
from api.parsing import parse_body
from api.routes.jobs import job_response, queued_response
from api.schemas import ExecuteRequest, ValidateRequest
from db.scripts import get_script
from sandbox.compiler import compile_script
from workers.jobspec import JobSpec
from workers.jobstore import TooManyActiveJobs
from workers.submit import IdempotencyConflict, QueueUnavailable, body_fingerprint, submit_job
from workers.waiting import wait_finished

bp = Blueprint("execute", __name__, url_prefix="/api/custom-calculations")

MAX_IDEMPOTENCY_KEY = 100


def check_code_size(code: str, limit: int) -> None:
    if len(code.encode("utf-8", "surrogatepass")) > limit:
        raise PayloadTooLarge(
            f"code is over the limit of {limit} bytes", {"code": f"at most {limit} bytes"}
        )


@bp.post("/validate")
def validate():
    body = parse_body(ValidateRequest)
    check_code_size(body.code, calc().settings.max_code_bytes)
    compile_script(body.code)
    return {"valid": True}


@bp.post("/execute")
def execute():
    body = parse_body(ExecuteRequest)
    ext, owner = calc(), current_owner()
    spec = _job_spec(body, owner)
    key = _idempotency_key()
    # (Only a keyed submit needs its body's fingerprint: the rest skip the work.)
    fingerprint = (
        "" if key is None else body_fingerprint(body.model_dump(mode="json", exclude={"wait"}))
    )
    try:
        submitted = submit_job(
            spec,
            store=ext.store,
            celery=ext.celery,
            idempotency_key=key,
            fingerprint=fingerprint,
            max_active=ext.settings.max_active_jobs,
        )
    except IdempotencyConflict as exc:
        raise Conflict(str(exc), {"Idempotency-Key": "used with another body"}) from None
    except TooManyActiveJobs as exc:
        raise RateLimited(str(exc), {"jobs": str(exc)}, headers={"Retry-After": "2"}) from None
    except QueueUnavailable as exc:
        raise ServiceUnavailable(
            str(exc), {"redis": "unavailable"}, headers={"Retry-After": "5"}
        ) from None
    if body.wait > 0:
        wait = min(body.wait, ext.settings.max_wait_seconds)
        with ext.slots.released():  # a long poll only waits: others may run meanwhile
            wait_finished(ext.store, submitted.job_id, wait)
    elif submitted.queued is not None:  # just queued: answered as written, not read back
        return queued_response(submitted.queued)
    return job_response(submitted.job_id, owner)


def _job_spec(body: ExecuteRequest, owner: str | None) -> JobSpec:
    """The job as it will run: the code as it is now (later edits of a saved script do not
    change it), compiled once here so code that does not compile is a 400, never a job."""
    settings = calc().settings
    if body.script_id is not None:
        script = get_script(body.script_id, owner=owner, session=db_session())
        if script is None:
            raise NotFound(f"no script {body.script_id}")
        code = script.code
    else:
        code = body.script or ""
    check_code_size(code, settings.max_code_bytes)
    compiled = compile_script(code)
    return JobSpec.new(
        owner=owner,
        code=code,
        code_sha256=compiled.sha256,
        symbols=body.symbols,
        params=body.params,
        lookback=body.lookback,
        as_of=body.as_of.isoformat() if body.as_of else None,
        wall_seconds=min(body.timeout or settings.job_wall_seconds, settings.max_job_wall_seconds),
        script_id=body.script_id,
        source="api",
        cross_section=body.cross_section.model_dump() if body.cross_section else None,
    )


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 100 characters",
            {"Idempotency-Key": "must be 1 to 100 characters"},
        )
    return key
