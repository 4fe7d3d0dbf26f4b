"""What ``POST /execute`` and ``POST /evaluate`` share: the code to run, the Idempotency-Key,
and submitting the job with its answer (202 at once, or 200/202 after ``wait``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request

from api.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    payload_too_large,
    rate_limited,
)
from api.extension import calc, db_session
from api.routes.jobs import job_response, queued_response
from db.market_index import known_symbols
from db.scripts import get_script
from db.session import session_scope
from sandbox.compiler import compile_script
from workers.backlog import BacklogFull
from workers.jobspec import JobSpec
from workers.jobstore import TooManyActiveJobs
from workers.submit import IdempotencyConflict, QueueUnavailable, body_fingerprint, submit_job
from workers.waiting import wait_finished

MAX_IDEMPOTENCY_KEY = 100
ACTIVE_JOBS_RETRY_SECONDS = 2  # a place among the active jobs frees up as one finishes
BACKLOG_RETRY_SECONDS = 5  # the backlog drains by thousands of symbols a second


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    sha256: str


def check_code_size(code: str, limit: int) -> None:
    if len(code.encode("utf-8", "surrogatepass")) > limit:
        raise payload_too_large("code", limit)


def code_to_run(script: str | None, script_id: int | None, owner: str | None) -> Code:
    """The code as it is now (later edits of a saved script do not change the job), compiled
    once here so that code that does not compile is a 400, never a job."""
    if script_id is not None:
        saved = get_script(script_id, owner=owner, session=db_session())
        if saved is None:
            raise NotFound(f"no script {script_id}")
        script = saved.code
    code = script or ""
    check_code_size(code, calc().settings.max_code_bytes)
    return Code(code, compile_script(code).sha256)


def checked_reference(names: list[str]) -> list[str]:
    """``reference`` with every symbol known to the market data (an unknown one is a 400
    naming ``reference``); the built-ins need no look-up."""
    symbols = [n for n in names if not n.startswith("@")]
    if symbols:
        with session_scope(calc().market_engine) as session:
            known = known_symbols(symbols, session=session)
        unknown = [s for s in symbols if s not in known]
        if unknown:
            reason = f"unknown symbol {', '.join(unknown)} (no price data)"
            raise ValidationFailed(f"reference: {reason}", {"reference": reason})
    return names


def job_spec(body: Any, owner: str | None, code: Code, **own: Any) -> JobSpec:
    """The job of ``body``: the fields ``/execute`` and ``/evaluate`` share (API.md: "as for
    ``/execute``"), then the route's ``own``; ``reference`` is checked last, as a 400."""
    return JobSpec.new(
        owner=owner,
        code=code.code,
        code_sha256=code.sha256,
        params=body.params,
        lookback=body.lookback,
        script_id=body.script_id,
        reference=checked_reference(body.reference),
        **own,
    )


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 100 characters",
            {"Idempotency-Key": "must be 1 to 100 characters"},
        )
    return key


def submit_and_answer(spec: JobSpec, body: Any, *, wait: float, key_scope: str = ""):
    """Queue ``spec`` and answer as API.md says. ``body`` (a request model) fingerprints an
    Idempotency-Key's body; ``key_scope`` keeps one route's keys apart from another's."""
    ext = calc()
    key = idempotency_key()
    # (Only a keyed submit needs its body's fingerprint: the rest skip the work.)
    fingerprint = (
        "" if key is None else body_fingerprint(body.model_dump(mode="json", exclude={"wait"}))
    )
    try:
        submitted = submit_job(
            spec,
            store=ext.store,
            celery=ext.celery,
            idempotency_key=None if key is None else key_scope + key,
            fingerprint=fingerprint,
            # Per-user caps keep authenticated users from crowding one another out. With auth
            # off every request is the one anonymous user (a frontend, many analysts): no
            # per-user cap, the service's backlog limit alone.
            max_active=None if spec.owner is None else ext.settings.max_active_jobs,
            max_backlog=ext.settings.max_backlog_symbols,
        )
    except IdempotencyConflict as exc:
        raise Conflict(str(exc), {"Idempotency-Key": "used with another body"}) from None
    except TooManyActiveJobs as exc:
        limit = f"{ext.settings.max_active_jobs} queued or running jobs"
        raise rate_limited(str(exc), limit, ACTIVE_JOBS_RETRY_SECONDS) from None
    except BacklogFull as exc:
        limit = f"{exc.limit} symbols queued or running in the service"
        raise rate_limited(str(exc), limit, BACKLOG_RETRY_SECONDS) from None
    except QueueUnavailable as exc:
        raise ServiceUnavailable(
            str(exc), {"redis": "unavailable"}, headers={"Retry-After": "5"}
        ) from None
    if wait > 0:
        with ext.slots.released():  # a long poll only waits: others may run meanwhile
            wait_finished(ext.store, submitted.job_id, min(wait, ext.settings.max_wait_seconds))
    elif submitted.queued is not None:  # just queued: answered as written, not read back
        return queued_response(submitted.queued)
    return job_response(submitted.job_id)
