"""Scheduled runs: due times found by cron, each enqueued once, results stored durably."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import CustomScript
from db.session import session_scope
from tests.concurrency import at_once
from workers.celery_app import app, configure, worker_runtime
from workers.schedule import enqueue_due, latest_due

UTC = dt.UTC
THURSDAY_2230 = dt.datetime(2026, 11, 26, 22, 30, 5, tzinfo=UTC)


@pytest.fixture
def rt(settings, redis_url):
    configure(settings)
    return worker_runtime()


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


def schedule_script(rt, schedule: dict) -> int:
    """Replace every saved script with one on ``schedule``; answer its id."""
    with session_scope(rt.app_engine) as session:
        session.query(CustomScript).delete()
        script = CustomScript(name="zoned", code="result = close[-1]", schedule=schedule)
        session.add(script)
        session.flush()
        return script.id


def minutes(start: dt.datetime, end: dt.datetime):
    """A controlled clock: every minute from ``start`` to ``end``, a few seconds past each (as
    beat ticks)."""
    now = start.replace(second=3)
    while now <= end:
        yield now
        now += dt.timedelta(minutes=1)


def ticks_that_enqueue(rt, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    fired = []
    for now in minutes(start, end):
        if enqueue_due(now, rt=rt, submit=lambda spec: None):
            fired.append(now.replace(second=0))
    return fired


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
    at_once(lambda: enqueue_due(THURSDAY_2230, rt=rt, submit=submit), 4)
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
def test_scheduled_run_is_stored_with_its_errors(rt, client, scheduled):  # app (clears) first
    from tests.api.helpers import BASE, wait_done
    from workers.submit import submit_job

    (job_id,) = enqueue_due(
        THURSDAY_2230, rt=rt, submit=lambda spec: submit_job(spec, store=rt.store(), celery=app)
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


def test_latest_due_in_a_zone_keeps_the_wall_clock_across_daylight_saving():
    # New York moves its clocks forward on Sunday 2026-03-08: 16:30 there is 21:30 UTC
    # on the Friday before and 20:30 UTC on the Monday after.
    friday = dt.datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    monday = dt.datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    ny = "America/New_York"
    assert latest_due("30 16 * * 1-5", friday, ny) == dt.datetime(2026, 3, 6, 21, 30, tzinfo=UTC)
    assert latest_due("30 16 * * 1-5", monday, ny) == dt.datetime(2026, 3, 9, 20, 30, tzinfo=UTC)
    assert latest_due("30 16 * * 1-5", monday) == dt.datetime(2026, 3, 9, 16, 30, tzinfo=UTC)


def test_a_zoned_schedule_runs_at_its_local_time_before_and_after_the_change(rt):
    schedule_script(
        rt, {"cron": "30 16 * * 1-5", "timezone": "America/New_York", "symbols": ["AAPL"]}
    )
    friday = ticks_that_enqueue(
        rt, dt.datetime(2026, 3, 6, 20, 0, tzinfo=UTC), dt.datetime(2026, 3, 6, 22, 45, tzinfo=UTC)
    )
    monday = ticks_that_enqueue(
        rt, dt.datetime(2026, 3, 9, 20, 0, tzinfo=UTC), dt.datetime(2026, 3, 9, 22, 45, tzinfo=UTC)
    )
    assert friday == [dt.datetime(2026, 3, 6, 21, 30, tzinfo=UTC)]
    assert monday == [dt.datetime(2026, 3, 9, 20, 30, tzinfo=UTC)]


def test_the_repeated_hour_when_clocks_go_back_runs_once(rt):
    # 2026-11-01: New York's 01:00-02:00 happens twice (EDT, then EST).
    schedule_script(rt, {"cron": "30 1 * * *", "timezone": "America/New_York", "symbols": ["A"]})
    fired = ticks_that_enqueue(
        rt, dt.datetime(2026, 11, 1, 4, 50, tzinfo=UTC), dt.datetime(2026, 11, 1, 7, 10, tzinfo=UTC)
    )
    assert fired == [dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]


def test_a_time_the_clocks_skip_runs_once_just_after(rt):
    # 2026-03-08: New York's clocks jump from 02:00 to 03:00; 02:30 does not exist that day.
    schedule_script(rt, {"cron": "30 2 * * *", "timezone": "America/New_York", "symbols": ["A"]})
    fired = ticks_that_enqueue(
        rt, dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC), dt.datetime(2026, 3, 8, 8, 30, tzinfo=UTC)
    )
    assert fired == [dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]  # 03:00 EDT


def test_an_alias_runs_at_midnight_in_its_zone(rt):
    schedule_script(rt, {"cron": "@daily", "timezone": "Asia/Tokyo", "symbols": ["A"]})
    fired = ticks_that_enqueue(
        rt, dt.datetime(2026, 3, 8, 14, 0, tzinfo=UTC), dt.datetime(2026, 3, 8, 16, 0, tzinfo=UTC)
    )
    assert fired == [dt.datetime(2026, 3, 8, 15, 0, tzinfo=UTC)]  # 00:00 in Tokyo (UTC+9)
