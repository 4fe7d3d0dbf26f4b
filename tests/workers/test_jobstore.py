"""The Redis job store: records first, outcomes once, one finisher; the watchdog for lost jobs,
and reads that show an overdue job ended without writing anything."""

from __future__ import annotations

import threading
import time

import pytest

from tests.concurrency import at_once
from workers.jobspec import JobSpec, new_job_id
from workers.jobstore import JobStore, TooManyActiveJobs
from workers.keys import job_key
from workers.status import JobStatus
from workers.waiting import wait_finished
from workers.watchdog import expire_overdue, sweep_overdue


@pytest.fixture
def store(redis_client) -> JobStore:
    return JobStore(redis_client, ttl_seconds=60, queue_timeout=30)


def make_spec(symbols=("AAPL", "MSFT"), wall=10.0, owner=None) -> JobSpec:
    return JobSpec(
        job_id=new_job_id(),
        owner=owner,
        code="result = 1",
        code_sha256="0" * 64,
        symbols=list(symbols),
        params={"w": 1},
        lookback=20,
        as_of=None,
        wall_seconds=wall,
    )


def test_a_created_job_is_queued_and_expires(store, redis_client):
    spec = make_spec()
    store.create(spec)
    job = store.load(spec.job_id, owner=None)
    assert job.status is JobStatus.QUEUED
    assert job.to_public()["progress"] == {"done": 0, "total": 2}
    assert 0 < redis_client.ttl(job_key(spec.job_id)) <= 60
    assert store.spec(spec.job_id) == spec


def test_outcomes_are_written_once_so_redelivery_cannot_double_count(store):
    spec = make_spec()
    store.create(spec)
    assert store.record_outcomes(spec.job_id, [("AAPL", {"value": 1.0})]) == 1
    assert store.record_outcomes(spec.job_id, [("AAPL", {"value": 99.0})]) == 1
    job = store.load(spec.job_id, owner=None).to_public()
    assert job["results"] == {"AAPL": 1.0}
    assert job["progress"]["done"] == 1


def test_exactly_one_caller_finishes_a_job(store):
    spec = make_spec()
    store.create(spec)
    store.record_outcomes(spec.job_id, [("AAPL", {"value": 1.0}), ("MSFT", {"value": 2.0})])
    wins = at_once(lambda: store.finish(spec.job_id, JobStatus.COMPLETED), 8)
    assert wins.count(True) == 1
    assert store.load(spec.job_id, owner=None).status is JobStatus.COMPLETED


def test_finishing_fills_symbols_without_outcomes(store):
    spec = make_spec(symbols=("AAPL", "MSFT", "AMZN"))
    store.create(spec)
    store.mark_running(spec.job_id)
    store.record_outcomes(spec.job_id, [("AAPL", {"value": 1.0})])
    err = {"type": "TimeoutError", "message": "late"}
    assert store.finish(spec.job_id, JobStatus.TIMED_OUT, error=err, fill_error=err)
    job = store.load(spec.job_id, owner=None).to_public()
    assert job["status"] == "timed_out"
    assert job["results"] == {"AAPL": 1.0, "MSFT": None, "AMZN": None}
    assert set(job["errors"]) == {"MSFT", "AMZN"}
    assert job["error"] == err
    assert job["duration_ms"] is not None


def test_reading_an_overdue_job_writes_nothing(redis_client):
    finished = []
    store = JobStore(redis_client, ttl_seconds=60, on_finish=lambda s, job: finished.append(job))
    spec = make_spec(wall=0.2)
    store.create(spec)
    store.mark_running(spec.job_id, now=time.time() - 10)  # started long ago, nobody finished it
    job = store.load(spec.job_id, owner=None).to_public()
    assert job["status"] == "running"  # as stored: only the watchdog ends it
    assert store.list_for(None, limit=10)[0].status is JobStatus.RUNNING
    assert finished == []  # nothing was recorded in the database
    assert store.recorded_symbols(spec.job_id) == set()


def test_watchdog_times_out_a_running_job_whose_workers_died(store):
    spec = make_spec(wall=0.2)
    started = time.time() - 10
    store.create(spec)
    store.mark_running(spec.job_id, now=started)
    assert expire_overdue(store, spec.job_id)
    assert not expire_overdue(store, spec.job_id)  # once
    job = store.load(spec.job_id, owner=None).to_public()
    assert job["status"] == "timed_out"
    assert job["errors"]["AAPL"]["type"] == "TimeoutError"
    assert job["duration_ms"] == 2200  # ended when it became overdue: 0.2 s + 2 s of grace


def test_watchdog_fails_a_job_no_worker_picked_up(redis_client):
    store = JobStore(redis_client, ttl_seconds=60, queue_timeout=0.1)
    spec = make_spec()
    store.create(spec, now=time.time() - 5)
    assert expire_overdue(store, spec.job_id)
    job = store.load(spec.job_id, owner=None).to_public()
    assert job["status"] == "failed"
    assert job["error"]["type"] == "NoWorker"
    assert store.status(spec.job_id) is JobStatus.FAILED


def test_another_owner_sees_nothing(store):
    spec = make_spec(owner="alice")
    store.create(spec)
    assert store.load(spec.job_id, owner="bob") is None
    assert store.load(spec.job_id, owner=None) is None
    assert store.cancel(spec.job_id, owner="bob") is None
    assert store.list_for("bob", limit=10) == []
    assert [j.id for j in store.list_for("alice", limit=10)] == [spec.job_id]


def test_cancel_marks_the_job_and_keeps_finished_results(store):
    spec = make_spec()
    store.create(spec)
    store.record_outcomes(spec.job_id, [("AAPL", {"value": 1.0})])
    job = store.cancel(spec.job_id, owner=None).to_public()
    assert job["status"] == "cancelled"
    assert job["results"] == {"AAPL": 1.0, "MSFT": None}
    assert job["errors"]["MSFT"]["type"] == "Cancelled"


def test_wait_wakes_when_the_job_finishes_not_at_the_timeout(store):
    spec = make_spec()
    store.create(spec)
    store.mark_running(spec.job_id)
    timer = threading.Timer(0.3, lambda: store.finish(spec.job_id, JobStatus.COMPLETED))
    timer.start()
    started = time.monotonic()
    wait_finished(store, spec.job_id, timeout=10)
    elapsed = time.monotonic() - started
    timer.join()
    assert store.status(spec.job_id) is JobStatus.COMPLETED
    assert elapsed < 5  # woken by the message, far before the 10 s timeout


def test_the_periodic_watchdog_ends_jobs_nobody_reads(store):
    lost = make_spec(wall=1.0)
    store.create(lost, active_limit=10)
    store.mark_running(lost.job_id)
    alive = make_spec(wall=1.0)
    store.create(alive, active_limit=10)
    assert sweep_overdue(store) == []  # nothing is overdue yet
    later = time.time() + 3600
    assert set(sweep_overdue(store, now=later)) == {lost.job_id, alive.job_id}
    assert store.status(lost.job_id) is JobStatus.TIMED_OUT
    assert store.status(alive.job_id) is JobStatus.FAILED  # never picked up by a worker
    assert sweep_overdue(store, now=later) == []


def test_watchdog_finishes_a_job_whose_finisher_died_after_claiming_it(store, redis_client):
    spec = make_spec(wall=1.0)
    store.create(spec)
    store.mark_running(spec.job_id, now=time.time() - 100)
    # A finisher claimed the job long ago, then its process was killed before the status flip.
    redis_client.set(f"calc:job:{spec.job_id}:finish", repr(time.time() - 60))
    assert expire_overdue(store, spec.job_id)
    job = store.load(spec.job_id, owner=None).to_public()
    assert job["status"] == "timed_out"
    assert set(job["errors"]) == {"AAPL", "MSFT"}
    assert store.status(spec.job_id) is JobStatus.TIMED_OUT


def test_an_owner_over_the_active_limit_gets_nothing_written(store):
    first, second = make_spec(owner="ann"), make_spec(owner="ann")
    store.create(first, active_limit=1)
    with pytest.raises(TooManyActiveJobs):
        store.create(second, active_limit=1)
    assert store.load(second.job_id, owner="ann") is None
    assert store.status(first.job_id) is JobStatus.QUEUED
    store.create(make_spec(owner="bob"), active_limit=1)  # the limit is per owner
    store.release_active("ann", first.job_id)
    store.create(second, active_limit=1)  # a place freed is a place taken
    assert store.status(second.job_id) is JobStatus.QUEUED
