"""A job whose task fails in the worker is ``failed`` at once, saying so (issue 17, item 9).

Through a real Celery worker and Redis. The job's stored params are nested deeper than the
worker's JSON parser goes (the API refuses that at submit; here the record is written as an
older API or another writer could have left it): reading the job raises ``RecursionError``.
It used to sit ``queued`` for the 5-minute queue timeout, then say "no worker picked up the
job", which was false.
"""

from __future__ import annotations

import time

import pytest

from tests.workers.helpers import wait_finished
from workers.celery_app import app
from workers.fairqueue import FairQueue, enqueue
from workers.jobspec import JobSpec, new_job_id
from workers.jobstore import JobStore
from workers.keys import job_key

pytestmark = pytest.mark.usefixtures("celery_worker")

UNREADABLE_PARAMS = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"


def queue_unreadable_job(store: JobStore, entry: dict) -> JobSpec:
    spec = JobSpec(
        job_id=new_job_id(),
        owner=None,
        code="result = close[-1]",
        code_sha256="0" * 64,
        symbols=["AAPL", "MSFT", "ZTS"],
        params={},
        lookback=20,
        as_of="2018-02-07",
        wall_seconds=300,
    )
    store.create(spec)
    store.r.hset(job_key(spec.job_id), "params", UNREADABLE_PARAMS)
    enqueue(app, FairQueue(store.r), spec.owner, {"job": spec.job_id, **entry})
    return spec


@pytest.mark.parametrize(
    "entry",
    [{"start": True}, {"chunk": 1, "symbols": ["MSFT", "ZTS"]}],
    ids=["starting-the-job", "running-a-chunk"],
)
def test_a_task_that_fails_on_a_job_fails_the_job_at_once(redis_client, entry: dict) -> None:
    store = JobStore(redis_client, ttl_seconds=600)
    spec = queue_unreadable_job(store, entry)
    began = time.monotonic()
    body = wait_finished(store, spec.job_id)
    assert body["status"] == "failed"
    assert time.monotonic() - began < 10  # at once, not at the queue timeout
    assert body["error"]["type"] == "WorkerError"
    assert "RecursionError" in body["error"]["message"]
    assert "no worker" not in body["error"]["message"]
    assert set(body["results"]) == {"AAPL", "MSFT", "ZTS"}
    assert {e["type"] for e in body["errors"].values()} == {"WorkerError"}


def test_the_worker_goes_on_with_the_next_job(redis_client) -> None:
    store = JobStore(redis_client, ttl_seconds=600)
    queue_unreadable_job(store, {"start": True})
    spec = JobSpec(
        job_id=new_job_id(),
        owner=None,
        code="result = len(close)",
        code_sha256="1" * 64,
        symbols=["AAPL"],
        params={},
        lookback=20,
        as_of="2018-02-07",
        wall_seconds=60,
    )
    store.create(spec)
    enqueue(app, FairQueue(store.r), None, {"job": spec.job_id, "start": True})
    assert wait_finished(store, spec.job_id)["results"] == {"AAPL": 20}
