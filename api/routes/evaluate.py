"""``POST /evaluate``: a script run at every rebalance date of a period (API.md)."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_owner
from api.errors import ValidationFailed
from api.extension import calc
from api.parsing import parse_body
from api.schemas import EvaluateRequest
from api.submitting import code_to_run, job_spec, submit_and_answer
from db.session import session_scope
from workers.calendar_cache import job_calendar
from workers.evaluation_plan import PlanError, plan_dates
from workers.jobspec import JobSpec, ordered_unique

bp = Blueprint("evaluate", __name__, url_prefix="/api/custom-calculations")


@bp.post("/evaluate")
def evaluate():
    body = parse_body(EvaluateRequest)
    spec = _job_spec(body, current_owner())
    return submit_and_answer(spec, body, wait=body.wait, key_scope="evaluate:")


def _job_spec(body: EvaluateRequest, owner: str | None) -> JobSpec:
    """The evaluation as it will run: the code compiled, the rebalance dates fixed from the
    symbols' calendar (a range without dates, or too many, is a 400 here, never a job)."""
    settings = calc().settings
    code = code_to_run(body.script, body.script_id, owner)
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
        calendar = job_calendar(calc().redis, symbols, session=session)
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
    return job_spec(
        body,
        owner,
        code,
        symbols=symbols,
        wall_seconds=min(body.timeout or wall, wall),
        kind="evaluation",
        evaluation={
            **plan.spec(
                horizons=body.horizons,
                quantiles=body.quantiles,
                neutralize=body.neutralize,
                field=body.field,
            ),
            "end": body.end.isoformat(),  # the provenance's as_of_requested
        },
    )
