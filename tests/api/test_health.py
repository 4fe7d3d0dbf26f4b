"""``/health`` answers from the heartbeats workers keep fresh in Redis: fast, no false 503s,
and 503 within 2 seconds when Redis or the database hangs or once no worker beat for 30 s."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from settings import Settings
from tests.api.helpers import BASE
from workers.health import ALIVE_SECONDS, WORKERS_KEY, beat, report_confinement


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that accepts connections and never speaks: a server that hangs."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield silent.getsockname()[1]


@pytest.mark.usefixtures("celery_worker")
def test_health_with_a_live_worker_is_200_every_time_and_fast(client):
    timings, statuses = [], []
    for _ in range(100):
        started = time.perf_counter()
        response = client.get(f"{BASE}/health")
        timings.append(time.perf_counter() - started)
        statuses.append(response.status_code)
    assert statuses.count(200) == 100
    assert response.get_json() == {
        "status": "ok",
        "checks": checks(),
    }
    timings.sort()
    assert timings[49] < 0.02 and timings[94] < 0.05, timings  # median, 95th percentile


def checks(**changed: object) -> dict[str, object]:
    """/health's ``checks`` of one live worker with every dependency up, but for ``changed``."""
    return {"database": "ok", "redis": "ok", "workers": 1, "sandbox": "unknown", **changed}


def test_a_worker_counts_until_30_seconds_after_its_last_beat(client, redis_client):
    now = time.time()
    beat(redis_client, "w1@host", now=now - ALIVE_SECONDS + 2)
    answer = client.get(f"{BASE}/health")
    assert answer.status_code == 200 and answer.get_json()["checks"]["workers"] == 1

    beat(redis_client, "w1@host", now=now - ALIVE_SECONDS - 1)  # its last beat, 31 s ago
    answer = client.get(f"{BASE}/health")
    assert answer.status_code == 503
    assert answer.get_json()["checks"] == checks(workers=0)
    assert redis_client.zcard(WORKERS_KEY) == 1  # remembered, just not alive


def test_health_counts_worker_nodes(client, redis_client):
    for node in ("a@h1", "b@h2", "c@h2"):
        beat(redis_client, node)
    assert client.get(f"{BASE}/health").get_json()["checks"]["workers"] == 3


def test_a_hanging_database_is_503_within_2_seconds(redis_url, redis_client, make_app, silent_port):
    beat(redis_client, "w1@host")
    dead = f"postgresql://postgres@127.0.0.1:{silent_port}/none"
    client = make_app(Settings(database_url=dead, redis_url=redis_url)).test_client()
    started = time.monotonic()
    answer = client.get(f"{BASE}/health")
    assert time.monotonic() - started < 2.0
    assert answer.status_code == 503
    assert answer.get_json()["checks"] == checks(database="unavailable")


def test_a_hanging_redis_is_503_within_2_seconds(sample_market_data, make_app, silent_port):
    settings = Settings(
        database_url=sample_market_data, redis_url=f"redis://127.0.0.1:{silent_port}/0"
    )
    client = make_app(settings).test_client()
    started = time.monotonic()
    answer = client.get(f"{BASE}/health")
    assert time.monotonic() - started < 2.0
    assert answer.status_code == 503
    assert answer.get_json()["status"] == "unavailable"
    assert answer.get_json()["checks"] == checks(redis="unavailable", workers=0)


def test_health_says_the_weakest_sandbox_confinement_of_the_live_workers(client, redis_client):
    """Each worker's pool processes report what confinement their sandbox got (README,
    Sandbox); /health shows the weakest among live workers, and a worker that refused to run
    user code (strict mode, a kernel that refused a step) makes it 503."""
    beat(redis_client, "a@h1")
    beat(redis_client, "b@h2")
    report_confinement(redis_client, "a@h1", "full")
    report_confinement(redis_client, "gone@h3", "refused")  # never beat: not counted
    assert client.get(f"{BASE}/health").get_json()["checks"]["sandbox"] == "full"

    report_confinement(redis_client, "b@h2", "relaxed (missing: seccomp)")
    answer = client.get(f"{BASE}/health")
    assert answer.status_code == 200
    assert answer.get_json()["checks"]["sandbox"] == "relaxed (missing: seccomp)"

    report_confinement(redis_client, "b@h2", "refused")
    answer = client.get(f"{BASE}/health")
    assert answer.status_code == 503
    assert answer.get_json()["checks"] == checks(workers=2, sandbox="refused")
