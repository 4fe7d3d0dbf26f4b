"""``POST /evaluate``: a script run at every rebalance date of a period (API.md)."""

from __future__ import annotations

import uuid

from flask import Blueprint, request

from api.auth import current_owner
from api.errors import Conflict, NotFound, RateLimited, ServiceUnavailable, ValidationFailed
from api.extension import calc, db_session
from api.parsing import parse_body
from api.routes.execute import MAX_IDEMPOTENCY_KEY, check_code_size
from api.routes.jobs import job_response, queued_response
from api.schemas import EvaluateRequest
from db.evaluation_data import trading_calendar
from db.scripts import get_script
from db.session import session_scope
from sandbox.compiler import compile_script
from workers.evaluation_plan import PlanError, plan_dates
from workers.jobspec import JobSpec, ordered_unique
from workers.jobstore import TooManyActiveJobs
from workers.submit import IdempotencyConflict, QueueUnavailable, body_fingerprint, submit_job
from workers.waiting import wait_finished

bp = Blueprint("evaluate", __name__, url_prefix="/api/custom-calculations")


@bp.post("/evaluate")
def evaluate():
    body = parse_body(EvaluateRequest)
    ext, owner = calc(), current_owner()
    spec = _job_spec(body, owner)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 100 characters",
            {"Idempotency-Key": "must be 1 to 100 characters"},
        )
    fingerprint = (
        "" if key is None else body_fingerprint(body.model_dump(mode="json", exclude={"wait"}))
    )
    try:
        submitted = submit_job(
            spec,
            store=ext.store,
            celery=ext.celery,
            idempotency_key=None if key is None else f"evaluate:{key}",
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
        with ext.slots.released():
            wait_finished(
                ext.store, submitted.job_id, min(body.wait, ext.settings.max_wait_seconds)
            )
    elif submitted.queued is not None:
        return queued_response(submitted.queued)
    return job_response(submitted.job_id, owner)


def _job_spec(body: EvaluateRequest, owner: str | None) -> JobSpec:
    """The evaluation as it will run: the code compiled, the rebalance dates fixed from the
    symbols' calendar (a range without dates, or too many, is a 400 here, never a job)."""
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
    symbols = ordered_unique(body.symbols)
    if len(symbols) < 2:
        raise ValidationFailed(
            "symbols: an evaluation needs at least 2 distinct symbols",
            {"symbols": "must hold 2 to 5000 distinct items"},
        )
    if body.start > body.end:
        raise ValidationFailed(
            f"start: {body.start} is after end ({body.end})", {"start": "must be on or before end"}
        )
    with session_scope(calc().market_engine) as session:
        calendar = trading_calendar(symbols, session=session)
    try:
        plan = plan_dates(
            calendar,
            start=body.start,
            end=body.end,
            every=body.every,
            lookback=body.lookback,
            horizons=body.horizons,
            symbols=len(symbols),
        )
    except PlanError as exc:
        raise ValidationFailed(f"{exc.field}: {exc}", {exc.field: str(exc)}) from None
    wall = settings.evaluation_wall_seconds
    return JobSpec(
        job_id=str(uuid.uuid4()),
        owner=owner,
        code=code,
        code_sha256=compiled.sha256,
        symbols=symbols,
        params=body.params,
        lookback=body.lookback,
        as_of=None,
        wall_seconds=min(body.timeout or wall, wall),
        script_id=body.script_id,
        source="api",
        kind="evaluation",
        evaluation=plan.spec(
            horizons=body.horizons,
            quantiles=body.quantiles,
            neutralize=body.neutralize,
            field=body.field,
        ),
    )
