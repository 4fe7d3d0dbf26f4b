"""The service's backlog (workers/backlog.py): counted in at create, out once at any ending."""

from __future__ import annotations

import time

import pytest

from tests.workers.test_jobstore import make_spec
from workers.backlog import BacklogFull
from workers.jobstore import JobStore, TooManyActiveJobs
from workers.status import JobStatus
from workers.watchdog import sweep_overdue


@pytest.fixture
def store(redis_client) -> JobStore:
    return JobStore(redis_client, ttl_seconds=60, queue_timeout=30)


def test_every_way_a_job_ends_counts_it_out_once(store):
    ended, discarded, cancelled = (make_spec(["A", "B"]) for _ in range(3))
    for spec in (ended, discarded, cancelled):
        store.create(spec, backlog_limit=6)
    assert store.backlog.total() == 6
    with pytest.raises(BacklogFull):
        store.create(make_spec(["C"]), backlog_limit=6)
    assert store.finish(ended.job_id, JobStatus.COMPLETED)
    store.finish(ended.job_id, JobStatus.FAILED)  # a second finisher loses: no second count
    store.discard(discarded.job_id, None)
    store.cancel(cancelled.job_id, owner=None)
    store.cancel(cancelled.job_id, owner=None)
    assert store.backlog.total() == 0


def test_a_refused_job_leaves_nothing_counted(store, redis_client):
    store.create(make_spec(["A"], owner="alice"), active_limit=1, backlog_limit=10)
    with pytest.raises(TooManyActiveJobs):
        store.create(make_spec(["B", "C"], owner="alice"), active_limit=1, backlog_limit=10)
    assert store.backlog.total() == 1
    assert redis_client.zcard("calc:backlog") == 1


def test_unlimited_jobs_are_counted_and_stale_ones_dropped(store):
    store.create(make_spec(["A", "B", "C"]))  # the scheduler's runs: never refused, counted
    assert store.backlog.total() == 3
    stale = make_spec(["D"], wall=0.0)
    store.create(stale, backlog_limit=100, now=0.0)  # ended, by its score, long ago
    assert store.backlog.total() == 4
    store.create(make_spec(["E"]), backlog_limit=100)
    assert store.backlog.total() == 4  # the stale member went on this admit


def test_the_watchdog_ending_an_overdue_job_counts_it_out(redis_client):
    store = JobStore(redis_client, ttl_seconds=60, queue_timeout=1)
    store.create(make_spec(["A", "B"]), backlog_limit=10)
    assert len(sweep_overdue(store, now=time.time() + 3600)) == 1
    assert store.backlog.total() == 0
