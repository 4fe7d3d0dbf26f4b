"""Per-user limits (active jobs, request rate) and idempotent submits."""

from __future__ import annotations

import pytest

from api.schemas import RateLimitedResponse
from tests.api.helpers import BASE, make_token, submit

BODY = {"script": "result = 1", "symbols": ["AAPL"]}


def rate_limited(response, limit: str) -> None:
    """Every 429, whichever layer refused: the envelope, ``details`` with the limit and the
    seconds to wait, and ``Retry-After`` saying the same (README, The API beyond API.md)."""
    assert response.status_code == 429, response.get_data(as_text=True)
    RateLimitedResponse.model_validate(response.get_json())  # as the OpenAPI document says
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert response.get_json()["error"]["details"] == {"limit": limit, "retry_after": retry_after}


@pytest.fixture
def settings(settings):
    return settings.with_overrides(max_active_jobs=3, rate_limit_execute="6 per minute")


@pytest.fixture
def authed(settings, make_app):
    """An app with auth required, and a token of alice's for it."""
    app = make_app(settings.with_overrides(auth="required"))
    token = make_token(app.test_cli_runner(), "alice")
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def test_more_active_jobs_than_allowed_is_429_with_retry_after(authed, redis_client):
    client, alice = authed
    # No worker runs here, so every job stays queued and counts as active.
    for _ in range(3):
        assert submit(client, BODY, **alice).status_code == 202
    rate_limited(submit(client, BODY, **alice), "3 queued or running jobs")
    assert len(redis_client.keys("calc:job:*[0-9a-f]")) == 3  # the refused one left nothing
    jobs = client.get(f"{BASE}/jobs", headers=alice).get_json()["items"]
    client.delete(f"{BASE}/jobs/{jobs[0]['job_id']}", headers=alice)  # cancelling frees a place
    assert submit(client, BODY, **alice).status_code == 202


def test_with_auth_off_the_one_anonymous_user_has_no_per_user_caps(settings, make_app):
    # Everyone is the anonymous user when auth is off: the per-user caps (3 active jobs here,
    # 30 submits a second by default with auth) would hold every analyst to one user's share.
    defaults = settings.with_overrides(rate_limit_execute="")
    assert defaults.with_overrides(auth="required").execute_rate_limit == "30 per second"
    client = make_app(defaults).test_client()
    statuses = [submit(client, BODY).status_code for _ in range(40)]
    assert statuses == [202] * 40


def test_request_rate_limit_is_429_in_the_envelope(authed):
    client, alice = authed
    statuses = [submit(client, {**BODY, "symbols": []}, **alice).status_code for _ in range(7)]
    assert statuses[:6] == [400] * 6
    assert statuses[6] == 429
    rate_limited(submit(client, BODY, **alice), "6 per 1 minute")  # Retry-After: the window
    # Other routes have their own, higher limit.
    assert client.get(f"{BASE}/jobs", headers=alice).status_code == 200


def test_the_service_backlog_limit_is_429_with_retry_after_and_queues_nothing(
    settings, make_app, redis_client
):
    client = make_app(settings.with_overrides(max_backlog_symbols=5)).test_client()
    three = {**BODY, "symbols": ["AAPL", "MSFT", "AMZN"]}
    first = submit(client, three)
    assert first.status_code == 202
    queued = set(redis_client.keys("calc:job:*[0-9a-f]"))
    full = "5 symbols queued or running in the service"
    rate_limited(submit(client, three), full)  # 3 + 3 > 5
    evaluation = {**three, "start": "2017-01-03", "end": "2017-06-30"}
    rate_limited(client.post(f"{BASE}/evaluate", json=evaluation), full)  # the same backlog
    assert set(redis_client.keys("calc:job:*[0-9a-f]")) == queued  # nothing written
    assert redis_client.llen("celery") == 1  # nor published
    assert submit(client, {**BODY, "symbols": ["AAPL", "MSFT"]}).status_code == 202  # 5 of 5
    assert submit(client, BODY).status_code == 429
    client.delete(f"{BASE}/jobs/{first.get_json()['job_id']}")  # a finished job frees its share
    assert submit(client, three).status_code == 202
    assert submit(client, BODY).status_code == 429


def test_a_job_larger_than_the_backlog_limit_runs_when_the_service_is_idle(settings, make_app):
    client = make_app(settings.with_overrides(max_backlog_symbols=2)).test_client()
    big = {**BODY, "symbols": ["AAPL", "MSFT", "AMZN"]}
    assert submit(client, big).status_code == 202  # never refused forever
    assert submit(client, BODY).status_code == 429


def test_the_submit_limit_is_per_user_and_shared_by_the_api_processes(settings, make_app):
    settings = settings.with_overrides(auth="required")  # 6 submits a minute, 3 active jobs
    first, second = make_app(settings), make_app(settings)  # two API processes, one Redis
    alice, bob = (
        {"Authorization": f"Bearer {make_token(first.test_cli_runner(), user)}"}
        for user in ("alice", "bob")
    )
    empty = {**BODY, "symbols": []}  # a 400 still counts, and queues no job
    statuses = [
        submit(app.test_client(), empty, **alice).status_code for app in [first, second] * 3
    ]
    assert statuses == [400] * 6
    rate_limited(submit(second.test_client(), BODY, **alice), "6 per 1 minute")
    assert submit(first.test_client(), BODY, **bob).status_code == 202  # bob has his own
    assert submit(first.test_client(), BODY).status_code == 401  # no token: no submit at all


def test_idempotency_key_answers_the_same_job(client, redis_client):
    first = submit(client, BODY, **{"Idempotency-Key": "k-1"})
    again = submit(client, BODY, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.get_json()["job_id"] == again.get_json()["job_id"]
    assert len(redis_client.keys("calc:job:*[0-9a-f]")) == 1
    other = submit(client, {**BODY, "symbols": ["MSFT"]}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    assert other.get_json()["error"]["type"] == "Conflict"
    assert (
        submit(client, BODY, **{"Idempotency-Key": "k-2"}).get_json()["job_id"]
        != (first.get_json()["job_id"])
    )
    too_long = submit(client, BODY, **{"Idempotency-Key": "x" * 101})
    assert too_long.status_code == 400


def test_the_202_of_a_submit_is_the_job_as_stored(client):
    # No worker runs here: the job stays queued, so reading it back must give the same body.
    response = submit(client, BODY)
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"].endswith(f"/jobs/{job['job_id']}")
    assert job["status"] == "queued" and job["progress"] == {"done": 0, "total": 1}
    assert client.get(f"{BASE}/jobs/{job['job_id']}").get_json() == job


def test_the_default_limit_answers_429_with_the_same_details(settings, make_app):
    client = make_app(settings.with_overrides(rate_limit_default="2 per minute")).test_client()
    statuses = [client.get(f"{BASE}/jobs").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.get(f"{BASE}/scripts")  # one limit per route
    assert response.status_code == 200
    rate_limited(client.get(f"{BASE}/jobs"), "2 per 1 minute")
    assert client.get(f"{BASE}/health").status_code != 429  # the probes are exempt


def test_with_redis_down_the_limit_lets_requests_through_to_a_503(settings, make_app):
    client = make_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0")).test_client()
    response = submit(client, BODY)
    assert response.status_code == 503
    assert response.get_json()["error"]["type"] == "ServiceUnavailable"
