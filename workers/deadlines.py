"""How a job that outlived its deadline ends (``workers.watchdog`` ends it so).

A queued job no worker started within the queue timeout fails (``NoWorker``); a running job
past its wall-clock limit is ``timed_out``. Symbols without an outcome get the matching error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.status import JobStatus

GRACE_SECONDS = 2.0  # past its deadline plus this, a job whose worker died is overdue


@dataclass(frozen=True, slots=True)
class Ending:
    """How a job ends: its status, the job-level error and the error of symbols not run."""

    status: JobStatus
    error: dict[str, Any] | None = None
    fill_error: dict[str, Any] | None = None


def timed_out(wall_seconds: str | float) -> Ending:
    message = f"the job exceeded its wall-clock limit of {float(wall_seconds):g} s"
    return Ending(
        JobStatus.TIMED_OUT,
        {"type": "TimeoutError", "message": message},
        {"type": "TimeoutError", "message": "not run: " + message},
    )


NO_WORKER = {"type": "NoWorker", "message": "no worker picked up the job in time"}


def overdue_since(fields: dict[str, str]) -> float | None:
    """When the job (its record's fields) became overdue; None for one that is finished."""
    if JobStatus(fields["status"]).finished:
        return None
    return float(fields["deadline"]) + GRACE_SECONDS


def overdue_ending(fields: dict[str, str], now: float) -> Ending | None:
    """How the job ends if it is overdue at ``now``; None if it is not."""
    since = overdue_since(fields)
    if since is None or now <= since:
        return None
    if JobStatus(fields["status"]) is JobStatus.QUEUED:
        return Ending(JobStatus.FAILED, NO_WORKER, NO_WORKER)
    return timed_out(fields["wall_seconds"])
