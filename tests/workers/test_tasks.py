"""The tasks through a real Celery worker: a database outage is retried, then a clear error."""

from __future__ import annotations

import pytest

from tests.workers.helpers import wait_finished
from workers.celery_app import app
from workers.jobspec import JobSpec, new_job_id
from workers.jobstore import JobStore
from workers.submit import submit_job

DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/none"


@pytest.fixture
def settings(settings):
    return settings.with_overrides(database_url=DEAD_DATABASE, market_data_url=DEAD_DATABASE)


@pytest.mark.usefixtures("celery_worker")
def test_market_data_outage_is_retried_then_reported_not_a_crash_loop(redis_client):
    store = JobStore(redis_client, ttl_seconds=60)
    spec = JobSpec(
        job_id=new_job_id(),
        owner=None,
        code="result = 1",
        code_sha256="0" * 64,
        symbols=["AAPL", "MSFT"],
        params={},
        lookback=20,
        as_of="2018-02-07",
        wall_seconds=30,
    )
    submit_job(spec, store=store, celery=app)
    body = wait_finished(store, spec.job_id)
    assert body["status"] == "failed"
    assert body["error"]["type"] == "DataUnavailable"
    assert {e["type"] for e in body["errors"].values()} == {"DataUnavailable"}
    assert set(body["results"]) == {"AAPL", "MSFT"}
    tries = redis_client.hgetall(f"calc:job:{spec.job_id}:tries")
    assert all(int(n) <= 1 for n in tries.values())  # retries are not counted as lost workers
