"""Auth on: tokens from the CLI, hashed at rest, and two users who never see each other."""

from __future__ import annotations

import logging

import pytest

from tests.api.helpers import BASE, make_token

pytestmark = pytest.mark.usefixtures("celery_worker")


@pytest.fixture
def settings(settings):
    return settings.with_overrides(auth="required")


@pytest.fixture
def alice(runner):
    return {"Authorization": f"Bearer {make_token(runner, 'alice')}"}


@pytest.fixture
def bob(runner):
    return {"Authorization": f"Bearer {make_token(runner, 'bob')}"}


def test_token_is_stored_only_as_a_hash(app, runner):
    token = make_token(runner, "carol")
    from db.models import ApiToken

    with app.app_context():
        from api.extension import db_session

        hashes = [t.token_hash for t in db_session().query(ApiToken).all()]
    assert token not in hashes and all(len(h) == 64 for h in hashes)
    listing = runner.invoke(args=["tokens", "list"]).output
    assert "carol" in listing and token not in listing


def test_missing_wrong_and_revoked_tokens_are_401(client, runner, alice):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get(f"{BASE}/scripts", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["type"] == "Unauthorized"
    assert client.get(f"{BASE}/scripts", headers=alice).status_code == 200
    token_id = runner.invoke(args=["tokens", "list"]).output.strip().splitlines()[-1].split()[0]
    assert runner.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert client.get(f"{BASE}/scripts", headers=alice).status_code == 401


def test_health_and_openapi_need_no_token(client):
    assert client.get(f"{BASE}/openapi.json").status_code == 200
    assert client.get(f"{BASE}/health").status_code in (200, 503)
    assert client.get("/metrics").status_code == 401


def test_a_scraper_reaches_metrics_with_an_api_token(client, runner):
    """README, Operations: with auth on, Prometheus scrapes ``/metrics`` with a token made by
    the CLI like any other (a user of its own, ``prometheus``); without one it is a 401."""
    from prometheus_client.parser import text_string_to_metric_families

    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["type"] == "Unauthorized"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    token = make_token(runner, "prometheus")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert families["calc_redis_up"].samples[0].value == 1
    assert {"calc_jobs_finished", "calc_queue_depth", "calc_job_duration_seconds"} <= set(families)


def test_two_users_see_only_their_own(client, alice, bob):
    made = client.post(
        f"{BASE}/scripts", json={"name": "mine", "code": "result = 1"}, headers=alice
    )
    assert made.status_code == 201
    script = made.get_json()
    assert script["user_id"] == "alice"
    sid = script["id"]
    job = run_job_as(client, alice, {"script_id": sid, "symbols": ["AAPL"]})
    # Bob: every route answers 404 or an empty list for Alice's objects.
    alices = [  # method, path, body
        ("GET", f"/scripts/{sid}", None),
        ("PUT", f"/scripts/{sid}", {"name": "x", "code": "result = 2"}),
        ("DELETE", f"/scripts/{sid}", None),
        ("GET", f"/scripts/{sid}/results", None),
        ("POST", "/execute", {"script_id": sid, "symbols": ["AAPL"]}),
        ("GET", f"/jobs/{job['job_id']}", None),
        ("DELETE", f"/jobs/{job['job_id']}", None),
    ]
    for method, path, body in alices:
        answer = client.open(f"{BASE}{path}", method=method, json=body, headers=bob)
        assert answer.status_code == 404, (method, path)
    assert client.get(f"{BASE}/scripts", headers=bob).get_json()["total"] == 0
    assert client.get(f"{BASE}/jobs", headers=bob).get_json()["items"] == []
    # The same name is free for Bob.
    assert (
        client.post(
            f"{BASE}/scripts", json={"name": "mine", "code": "result = 1"}, headers=bob
        ).status_code
        == 201
    )
    # Alice still sees hers.
    assert client.get(f"{BASE}/scripts/{sid}", headers=alice).status_code == 200
    assert (
        client.get(f"{BASE}/scripts/{sid}/results", headers=alice).get_json()["job_id"]
        == (job["job_id"])
    )
    assert [j["job_id"] for j in client.get(f"{BASE}/jobs", headers=alice).get_json()["items"]] == [
        job["job_id"]
    ]


def run_job_as(client, headers, body):
    response = client.post(f"{BASE}/execute", json={**body, "wait": 20}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_no_token_in_logs(client, runner, caplog):
    caplog.set_level(logging.DEBUG)
    token = make_token(runner, "dave")
    headers = {"Authorization": f"Bearer {token}"}
    client.get(f"{BASE}/scripts", headers=headers)
    client.get(f"{BASE}/scripts", headers={"Authorization": f"Bearer {token}x"})
    assert token not in caplog.text


def test_last_use_is_stamped_and_then_only_every_few_minutes(app, client, runner, alice):
    def last_used() -> str:
        return runner.invoke(args=["tokens", "list"]).output.strip().splitlines()[-1]

    assert "never" in last_used()
    assert client.get(f"{BASE}/scripts", headers=alice).status_code == 200
    first = last_used()
    assert "never" not in first
    assert client.get(f"{BASE}/scripts", headers=alice).status_code == 200
    assert last_used() == first  # not stamped again within the resolution


def test_tokens_first_used_together_are_all_stamped(app, client, runner):
    tokens = [make_token(runner, f"burst-{i}") for i in range(5)]
    for token in tokens:
        response = client.get(f"{BASE}/scripts", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    listed = runner.invoke(args=["tokens", "list"]).output
    burst_lines = [line for line in listed.splitlines() if "burst-" in line]
    assert len(burst_lines) == 5
    assert not any("never" in line for line in burst_lines)
