"""A job's task message, made from Celery's own and pushed with the job's record."""

from __future__ import annotations

import json

import pytest

from workers.celery_app import app, configure
from workers.jobstore import JobSpec, JobStore, TooManyActiveJobs, new_job_id
from workers.submit import submit_job
from workers.task_messages import RunJobMessages, publish_run_job


@pytest.fixture
def celery_app(settings):
    configure(settings)
    return app


def spec_for(job_id: str) -> JobSpec:
    return JobSpec(
        job_id=job_id,
        owner="ana",
        code="result = 1",
        code_sha256="0" * 64,
        symbols=["AAPL"],
        params={},
        lookback=20,
        as_of=None,
        wall_seconds=10,
    )


def queued(redis_client) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange("celery", 0, -1)]


def test_the_made_message_is_the_one_celery_sends_itself(celery_app, redis_client):
    job_id = new_job_id()
    publish_run_job(job_id)
    [sent] = queued(redis_client)
    queue_key, message = RunJobMessages(celery_app).for_job(job_id)
    made = json.loads(message)
    assert queue_key == "celery"
    # Every field the same but the delivery tag, which must be new for every message.
    assert made["properties"].pop("delivery_tag") != sent["properties"].pop("delivery_tag")
    assert made == sent


def test_every_message_has_its_own_job_and_delivery_tag(celery_app):
    messages = RunJobMessages(celery_app)
    first, second = new_job_id(), new_job_id()
    a = json.loads(messages.for_job(first)[1])
    b = json.loads(messages.for_job(second)[1])
    assert (a["headers"]["id"], b["headers"]["id"]) == (first, second)
    assert a["properties"]["delivery_tag"] != b["properties"]["delivery_tag"]
    assert "cafe" not in json.dumps(a) + json.dumps(b)  # no trace of the placeholder id


def test_submit_pushes_the_task_with_the_record_and_nothing_over_the_limit(
    celery_app, redis_client
):
    store = JobStore(redis_client, ttl_seconds=60)
    job_id = new_job_id()
    submit_job(spec_for(job_id), store=store, max_active=1)
    assert [m["headers"]["id"] for m in queued(redis_client)] == [job_id]
    assert store.status(job_id) == "queued"
    with pytest.raises(TooManyActiveJobs):
        submit_job(spec_for(new_job_id()), store=store, max_active=1)
    assert [m["headers"]["id"] for m in queued(redis_client)] == [job_id]  # no task alone


def test_an_id_that_is_not_a_uuid_is_published_by_celery(celery_app, redis_client):
    store = JobStore(redis_client, ttl_seconds=60)
    assert RunJobMessages(celery_app).for_job("job-1") is None
    submit_job(spec_for("job-1"), store=store)
    assert [m["headers"]["id"] for m in queued(redis_client)] == ["job-1"]


def test_inside_a_task_the_message_is_left_to_celery(celery_app):
    """A job a task submits (a scheduled run) names that task as its parent: Celery's own
    apply_async sends it, never the template."""
    from celery._state import _task_stack

    parent = celery_app.tasks["calc.enqueue_due_scripts"]
    parent.push_request(id="beat-tick", called_directly=False)
    _task_stack.push(parent)
    try:
        assert RunJobMessages(celery_app).for_job(new_job_id()) is None
    finally:
        _task_stack.pop()
        parent.pop_request()
    assert RunJobMessages(celery_app).for_job(new_job_id()) is not None
