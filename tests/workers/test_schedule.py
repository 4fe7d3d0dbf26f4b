"""Scheduled runs: due times found by cron, each enqueued once, results stored durably."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from db.models import CustomScript
from db.session import session_scope
from workers import runtime
from workers.schedule import enqueue_due, latest_due

UTC = dt.UTC
THURSDAY_2230 = dt.datetime(2026, 11, 26, 22, 30, 5, tzinfo=UTC)


@pytest.fixture
def rt(settings, redis_url):
    return runtime.configure(settings)


@pytest.fixture
def scheduled(rt):
    """A saved script scheduled at 22:30 on weekdays; removed afterwards."""
    with session_scope(rt.app_engine) as session:
        session.query(CustomScript).delete()
        script = CustomScript(
            name="nightly",
            code="result = close[-1] / close[-2] - 1 if symbol != 'NOPE' else 1 / 0",
            schedule={
                "cron": "30 22 * * 1-5",
                "symbols": ["AAPL", "MSFT", "NOPE"],
                "params": {},
                "lookback": 30,
            },
        )
        session.add(script)
        session.flush()
        script_id = script.id
    yield script_id
    with session_scope(rt.app_engine) as session:
        session.query(CustomScript).delete()


def collect(rt):
    sent = []
    return sent, sent.append


def test_latest_due():
    assert latest_due("30 22 * * 1-5", THURSDAY_2230) == THURSDAY_2230.replace(second=0)
    saturday = dt.datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert latest_due("30 22 * * 1-5", saturday) == dt.datetime(2026, 11, 27, 22, 30, tzinfo=UTC)


def test_a_due_script_is_enqueued_once(rt, scheduled):
    sent, submit = collect(rt)
    assert len(enqueue_due(THURSDAY_2230, rt=rt, submit=submit)) == 1
    assert enqueue_due(THURSDAY_2230 + dt.timedelta(seconds=50), rt=rt, submit=submit) == []
    (spec,) = sent
    assert spec.script_id == scheduled and spec.source == "schedule"
    assert spec.symbols == ["AAPL", "MSFT", "NOPE"] and spec.lookback == 30


def test_two_dispatchers_at_once_enqueue_a_due_time_once(rt, scheduled):
    sent, submit = collect(rt)
    barrier = threading.Barrier(4)

    def tick():
        barrier.wait()
        enqueue_due(THURSDAY_2230, rt=rt, submit=submit)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 1


def test_not_due_or_long_past_is_not_enqueued(rt, scheduled):
    sent, submit = collect(rt)
    assert enqueue_due(THURSDAY_2230.replace(hour=21), rt=rt, submit=submit) == []
    assert enqueue_due(THURSDAY_2230 + dt.timedelta(minutes=20), rt=rt, submit=submit) == []
    assert sent == []


def test_clearing_the_schedule_or_deleting_stops_it(rt, scheduled):
    sent, submit = collect(rt)
    with session_scope(rt.app_engine) as session:
        session.get(CustomScript, scheduled).schedule = None
    assert enqueue_due(THURSDAY_2230, rt=rt, submit=submit) == []
    with session_scope(rt.app_engine) as session:
        session.delete(session.get(CustomScript, scheduled))
    assert enqueue_due(THURSDAY_2230, rt=rt, submit=submit) == []
    assert sent == []


@pytest.mark.usefixtures("celery_worker")
def test_scheduled_run_is_stored_with_its_errors(rt, scheduled, client):
    from tests.api.helpers import BASE, wait_done
    from workers.submit import submit_job

    (job_id,) = enqueue_due(
        THURSDAY_2230, rt=rt, submit=lambda spec: submit_job(spec, store=rt.store())
    )
    job = wait_done(client, job_id)
    assert job["status"] == "completed"
    run = client.get(f"{BASE}/scripts/{scheduled}/results").get_json()
    assert run["job_id"] == job_id
    assert run["results"]["AAPL"] == job["results"]["AAPL"] is not None
    assert run["errors"]["NOPE"]["type"] == "UnknownSymbol"
    from db.models import Execution

    with session_scope(rt.app_engine) as session:
        row = session.get(Execution, job_id)
        assert (row.source, row.status, row.script_id, row.error_count) == (
            "schedule",
            "completed",
            scheduled,
            1,
        )
