"""The watchdog: the only code that ends overdue jobs (their workers died, or none came).

Beat runs ``calc.sweep_overdue_jobs`` every half minute. Each overdue job ends as
``workers.deadlines`` says, dated the moment it became overdue. Reads never end a job: what a
client sees finished has its audit row written (``JobStore.finish``).
"""

from __future__ import annotations

import time

from workers.deadlines import overdue_ending, overdue_since
from workers.jobstore import JobStore

FINISHER_GRACE_SECONDS = 30.0  # a claim to finish a job older than this was abandoned


def expire_overdue(store: JobStore, job_id: str, *, now: float | None = None) -> bool:
    """End the job if it is overdue; True if this call ended it."""
    now = time.time() if now is None else now
    fields = store.fields(job_id)
    ending = overdue_ending(fields, now) if fields else None
    if ending is None:
        return False
    claim = not store.finisher_died(job_id, grace=FINISHER_GRACE_SECONDS)
    return store.end(job_id, ending, now=overdue_since(fields), claim=claim)


def sweep_overdue(store: JobStore, *, now: float | None = None) -> list[str]:
    """End every active job past its deadline; answer the ids of those ended."""
    now = time.time() if now is None else now
    ended = []
    for active_set, job_id in store.active_due(now):
        if expire_overdue(store, job_id, now=now):
            ended.append(job_id)
        elif (status := store.status(job_id)) is None or status.finished:
            store.drop_active(active_set, job_id)  # finished or expired: a stale entry
    return ended
