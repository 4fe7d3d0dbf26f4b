"""Scheduled re-runs of saved scripts: each due time enqueued exactly once.

Beat calls ``calc.enqueue_due_scripts`` every minute. For each scheduled script the
latest due time of its cron expression, read in the schedule's time zone (API.md: a run at
16:30 New York time stays at 16:30 across daylight-saving changes), is found; if it fell
within the catch-up window it is claimed with a Redis ``SET NX`` keyed by script and the
due *wall-clock* time, so two beat processes, a restarted beat or a redelivered task never
run the same due time twice, and the hour a zone repeats when its clocks go back runs a
01:30 schedule once, as cron does (a time the clocks skip runs at the first minute after).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from croniter import croniter

from db.scripts import scheduled_scripts
from db.session import session_scope
from logconfig import job_fields
from sandbox.compiler import code_sha256
from workers.jobspec import DEFAULT_LOOKBACK, JobSpec
from workers.keys import schedule_claim_key
from workers.runtime import Runtime

log = logging.getLogger(__name__)

CATCH_UP = dt.timedelta(minutes=5)  # a due time missed by longer than this is skipped
CLAIM_TTL_SECONDS = 7 * 24 * 3600

Submit = Callable[[JobSpec], None]


DEFAULT_TIMEZONE = "UTC"


def latest_due(cron: str, now: dt.datetime, timezone: str = DEFAULT_TIMEZONE) -> dt.datetime:
    """The newest time at or before ``now`` (aware) that ``cron`` names in ``timezone``, as
    an aware datetime in that zone."""
    base = (now + dt.timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return croniter(cron, base).get_prev(dt.datetime)


def claim_key(script_id: int, when: dt.datetime) -> str:
    """The claim of one due time: its wall-clock reading in the schedule's zone, so the two
    instants of a repeated hour are one due time."""
    zone = str(when.tzinfo)  # the zone's name, not its abbreviation (EDT and EST are one zone)
    return schedule_claim_key(script_id, f"{zone}:{when.replace(tzinfo=None).isoformat()}")


def enqueue_due(now: dt.datetime, *, rt: Runtime, submit: Submit) -> list[str]:
    """Enqueue every scheduled script due at ``now``; answer the new job ids."""
    with session_scope(rt.app_engine) as session:
        due = []
        for script in scheduled_scripts(session=session):
            schedule = script.schedule or {}
            try:
                when = latest_due(
                    schedule["cron"], now, schedule.get("timezone") or DEFAULT_TIMEZONE
                )
            except (KeyError, ValueError) as exc:  # (a bad zone name is a KeyError too)
                log.warning(
                    "schedule skipped: invalid",
                    extra={"script_id": script.id, "error": type(exc).__name__},
                )
                continue
            if now - when <= CATCH_UP:
                due.append((script.id, script.user_id, script.code, schedule, when))
    job_ids = []
    for script_id, owner, code, schedule, when in due:
        claim = claim_key(script_id, when)
        if not rt.redis.set(claim, "1", nx=True, ex=CLAIM_TTL_SECONDS):
            continue  # another beat (or an earlier run of this task) has it
        spec = JobSpec.new(
            owner=owner,
            code=code,
            code_sha256=code_sha256(code),
            symbols=schedule["symbols"],
            params=schedule.get("params") or {},
            lookback=int(schedule.get("lookback") or DEFAULT_LOOKBACK),
            wall_seconds=rt.settings.job_wall_seconds,
            script_id=script_id,
            source="schedule",
        )
        submit(spec)
        log.info(
            "scheduled run queued",
            extra=job_fields(spec.job_id, script_id=script_id, user=owner, due=when.isoformat()),
        )
        job_ids.append(spec.job_id)
    return job_ids
