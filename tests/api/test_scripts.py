"""Saved scripts: CRUD, paging and search, errors, execute by id, durable runs."""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.api.helpers import BASE, closes, run_job, submit, wait_done


def create(client, **fields):
    body = {"name": "rsi-14", "description": "14-day RSI", "code": "result = rsi(close, 14)[-1]"}
    body.update(fields)
    return client.post(f"{BASE}/scripts", json=body)


def test_create_read_update_delete(client):
    response = create(client)
    assert response.status_code == 201
    script = response.get_json()
    assert response.headers["Location"] == f"{BASE}/scripts/{script['id']}"
    assert script["name"] == "rsi-14" and script["schedule"] is None and script["user_id"] is None
    assert script["created_at"].endswith("Z") and script["created_at"] == script["updated_at"]
    assert client.get(f"{BASE}/scripts/{script['id']}").get_json() == script

    time.sleep(0.01)
    updated = client.put(
        f"{BASE}/scripts/{script['id']}",
        json={"name": "rsi-20", "code": "result = rsi(close, 20)[-1]"},
    ).get_json()
    assert updated["name"] == "rsi-20" and updated["description"] is None
    assert updated["updated_at"] > script["updated_at"]
    assert updated["created_at"] == script["created_at"]

    assert client.delete(f"{BASE}/scripts/{script['id']}").status_code == 204
    assert client.get(f"{BASE}/scripts/{script['id']}").status_code == 404
    assert client.delete(f"{BASE}/scripts/{script['id']}").status_code == 404


def test_list_pages_newest_first_and_searches(client):
    ids = [
        create(client, name=f"s{i}", description="momentum" if i % 2 else "value").get_json()["id"]
        for i in range(5)
    ]
    page = client.get(f"{BASE}/scripts?limit=2&offset=0").get_json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
    assert [s["id"] for s in page["items"]] == ids[::-1][:2]
    page2 = client.get(f"{BASE}/scripts?limit=2&offset=4").get_json()
    assert [s["id"] for s in page2["items"]] == [ids[0]]
    found = client.get(f"{BASE}/scripts?q=MOMENT").get_json()
    assert found["total"] == 2 and {s["name"] for s in found["items"]} == {"s1", "s3"}
    assert client.get(f"{BASE}/scripts?q=s4").get_json()["total"] == 1
    assert client.get(f"{BASE}/scripts?q=%25").get_json()["total"] == 0  # '%' is literal


def test_duplicate_name_is_409(client):
    assert create(client).status_code == 201
    response = create(client)
    assert response.status_code == 409
    assert response.get_json()["error"]["type"] == "Conflict"
    other = create(client, name="other").get_json()
    clash = client.put(
        f"{BASE}/scripts/{other['id']}", json={"name": "rsi-14", "code": "result = 1"}
    )
    assert clash.status_code == 409


@pytest.mark.parametrize(
    ("fields", "status", "kind", "detail"),
    [
        ({"code": "x = (1 +"}, 400, "SyntaxError", "line"),
        ({"code": "import os"}, 400, "SecurityError", "line"),
        ({"code": ""}, 400, "ValidationError", "code"),
        ({"name": ""}, 400, "ValidationError", "name"),
        ({"name": "x" * 101}, 400, "ValidationError", "name"),
        ({"description": "d" * 2001}, 400, "ValidationError", "description"),
        ({"code": "x = 1\n" * 12000}, 413, "PayloadTooLarge", "code"),
        (
            {"schedule": {"cron": "61 * * * *", "symbols": ["AAPL"]}},
            400,
            "ValidationError",
            "schedule.cron",
        ),
        (
            {"schedule": {"cron": "* * *", "symbols": ["AAPL"]}},
            400,
            "ValidationError",
            "schedule.cron",
        ),
        (
            {"schedule": {"cron": "0 22 * * 1-5", "symbols": []}},
            400,
            "ValidationError",
            "schedule.symbols",
        ),
        ({"name": "a\x00b"}, 400, "ValidationError", "name"),
        ({"owner": "x"}, 400, "ValidationError", "owner"),
    ],
)
def test_bad_scripts_are_refused_and_nothing_is_saved(client, fields, status, kind, detail):
    response = create(client, **fields)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["type"] == kind
    assert detail in error["details"]
    assert client.get(f"{BASE}/scripts").get_json()["total"] == 0


def test_missing_fields_are_named(client):
    response = client.post(f"{BASE}/scripts", json={"description": "x"})
    assert response.status_code == 400
    assert {"name", "code"} <= set(response.get_json()["error"]["details"])


def test_schedule_round_trips(client):
    schedule = {
        "cron": "30 22 * * 1-5",
        "symbols": ["aapl", "MSFT"],
        "params": {"n": 2},
        "lookback": 100,
    }
    script = create(client, schedule=schedule).get_json()
    assert script["schedule"] == {**schedule, "symbols": ["AAPL", "MSFT"], "timezone": "UTC"}


def test_schedule_in_a_time_zone_and_an_alias_round_trip(client):
    schedule = {"cron": "@DAILY", "timezone": "America/New_York", "symbols": ["AAPL"]}
    script = create(client, schedule=schedule).get_json()
    assert script["schedule"]["cron"] == "@daily"
    assert script["schedule"]["timezone"] == "America/New_York"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", "america/new_york", "EST5"]
)
def test_a_zone_that_is_not_an_iana_name_is_refused(client, zone):
    response = create(client, schedule={"cron": "0 22 * * *", "timezone": zone, "symbols": ["A"]})
    assert response.status_code == 400
    assert "schedule.timezone" in response.get_json()["error"]["details"]
    assert client.get(f"{BASE}/scripts").get_json()["total"] == 0


@pytest.mark.usefixtures("celery_worker")
def test_execute_by_id_runs_and_stores_the_run(client, redis_client):
    script = create(client, code="result = close[-1]").get_json()
    job = run_job(client, {"script_id": script["id"], "symbols": ["AAPL", "NOPE"]})
    assert job["script_id"] == script["id"]
    assert job["results"]["AAPL"] == closes("AAPL")[-1][1]
    run = client.get(f"{BASE}/scripts/{script['id']}/results").get_json()
    assert run["job_id"] == job["job_id"]
    assert run["results"] == job["results"]
    assert run["errors"]["NOPE"]["type"] == "UnknownSymbol"
    redis_client.flushdb()  # the run is in the database, not only in Redis
    again = client.get(f"{BASE}/scripts/{script['id']}/results").get_json()
    assert again["results"] == job["results"]
    assert client.get(f"{BASE}/jobs/{job['job_id']}").status_code == 404


@pytest.mark.usefixtures("celery_worker")
def test_results_say_which_code_they_came_from_after_an_edit(client):
    old, new = "result = close[-1]", "result = close[-2]"
    script = create(client, code=old).get_json()
    job = run_job(client, {"script_id": script["id"], "symbols": ["AAPL"]})
    client.put(f"{BASE}/scripts/{script['id']}", json={"name": "rsi-14", "code": new})
    run = client.get(f"{BASE}/scripts/{script['id']}/results").get_json()
    assert run["job_id"] == job["job_id"]
    assert run["code_sha256"] == hashlib.sha256(old.encode()).hexdigest()
    assert run["code_sha256"] != hashlib.sha256(new.encode()).hexdigest()
    rerun = run_job(client, {"script_id": script["id"], "symbols": ["AAPL"]})
    run = client.get(f"{BASE}/scripts/{script['id']}/results").get_json()
    assert (run["job_id"], run["code_sha256"]) == (
        rerun["job_id"],
        hashlib.sha256(new.encode()).hexdigest(),
    )


def test_results_of_a_script_never_run_is_404(client):
    script = create(client).get_json()
    response = client.get(f"{BASE}/scripts/{script['id']}/results")
    assert response.status_code == 404


def test_execute_by_id_uses_the_code_as_queued(client):
    """Edit and delete after queueing: the job still runs the code it was queued with."""
    script = create(client, code="result = 7").get_json()
    first = submit(client, {"script_id": script["id"], "symbols": ["AAPL"]}).get_json()
    client.put(f"{BASE}/scripts/{script['id']}", json={"name": "rsi-14", "code": "result = 8"})
    second = submit(client, {"script_id": script["id"], "symbols": ["AAPL"]}).get_json()
    client.delete(f"{BASE}/scripts/{script['id']}")
    # No worker has run yet: start one now, after the edit and the delete.
    from celery.contrib.testing.worker import start_worker

    from workers.celery_app import app as celery_app

    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        assert wait_done(client, first["job_id"])["results"] == {"AAPL": 7}
        assert wait_done(client, second["job_id"])["results"] == {"AAPL": 8}


@pytest.mark.usefixtures("celery_worker")
def test_audit_rows_for_completed_and_timed_out_jobs(app, client):
    from db.models import Execution

    done = run_job(
        client, {"script": "result = 1 / (symbol != 'MSFT')", "symbols": ["AAPL", "MSFT"]}
    )
    slow = "x = 0\nfor i in range(4000000):\n    x += i\nresult = 1"
    late = run_job(
        client, {"script": slow, "symbols": ["AAPL", "MSFT", "AMZN", "JPM"], "timeout": 0.3}
    )
    assert late["status"] == "timed_out"
    with app.app_context():
        from api.extension import db_session

        rows = {r.job_id: r for r in db_session().query(Execution).all()}
    row = rows[done["job_id"]]
    assert (row.status, row.symbol_count, row.error_count, row.source) == ("completed", 2, 1, "api")
    assert row.user_id is None and row.script_id is None and len(row.code_sha256) == 64
    assert row.started_at <= row.finished_at and row.duration_ms >= 0
    timed = rows[late["job_id"]]
    assert timed.status == "timed_out" and timed.error_count >= 1


def test_audit_row_for_a_failed_job(app, client):
    """No worker takes the job: the watchdog fails it, and the audit row says so."""
    from db.models import Execution

    job = submit(client, {"script": "result = 1", "symbols": ["AAPL", "MSFT"]}).get_json()
    from workers.watchdog import expire_overdue

    store = app.extensions["calc"].store
    assert expire_overdue(store, job["job_id"], now=time.time() + 3600)  # no worker came
    body = client.get(f"{BASE}/jobs/{job['job_id']}").get_json()
    assert body["status"] == "failed" and body["error"]["type"] == "NoWorker"
    with app.app_context():
        from api.extension import db_session

        row = db_session().get(Execution, job["job_id"])
    assert (row.status, row.error_count, row.symbol_count) == ("failed", 2, 2)
    assert row.finished_at is not None and row.started_at is None


@pytest.mark.usefixtures("celery_worker")
def test_jobs_list_keeps_jobs_after_redis_forgot_them(client, redis_client):
    done = run_job(client, {"script": "result = 1", "symbols": ["AAPL", "MSFT"]})
    redis_client.flushdb()  # the live record is gone (as after 24 hours); the audit row is not
    items = client.get(f"{BASE}/jobs").get_json()["items"]
    listed = {item["job_id"]: item for item in items}
    assert listed[done["job_id"]]["status"] == "completed"
    assert listed[done["job_id"]]["progress"] == {"done": 2, "total": 2}
    assert "results" not in listed[done["job_id"]]
    fresh = run_job(client, {"script": "result = 2", "symbols": ["AAPL"]})
    ids = [item["job_id"] for item in client.get(f"{BASE}/jobs").get_json()["items"]]
    assert ids.index(fresh["job_id"]) < ids.index(done["job_id"])  # newest first
