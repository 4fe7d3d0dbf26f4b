"""``/health`` over HTTP with a real prefork worker: no false 503 idle or with every worker
process busy, and 503 once the only worker has been dead for 30 seconds."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.api.helpers import sample_symbols
from tests.e2e.conftest import free_port, start_web, start_worker, stop
from workers.health import ALIVE_SECONDS

pytestmark = pytest.mark.slow

SPIN = "x = 0\nfor i in range(10 ** 9):\n    x += i\nresult = 1"


def health_calls(url: str, count: int, gap: float = 0.0) -> tuple[list[int], list[float]]:
    statuses, timings = [], []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            statuses.append(session.get(url, timeout=5).status_code)
            timings.append(time.perf_counter() - started)
            time.sleep(gap)
    return statuses, sorted(timings)


def running(live, jobs: list[str]) -> int:
    """How many of ``jobs`` are running with symbols left (a chunk each, on a process each)."""
    count = 0
    for job_id in jobs:
        job = requests.get(live.api(f"/jobs/{job_id}"), timeout=10).json()
        count += job["status"] == "running" and job["progress"]["done"] < job["progress"]["total"]
    return count


def test_health_idle_is_200_on_every_call_and_fast(live):
    statuses, timings = health_calls(live.api("/health"), 100)
    assert statuses.count(200) == 100, statuses
    assert timings[49] < 0.05 and timings[94] < 0.1, timings


def test_health_while_every_worker_process_is_busy_is_200_on_every_call(live):
    jobs = []
    try:
        for symbols in (sample_symbols()[:20], sample_symbols()[20:40], sample_symbols()[40:60]):
            body = {"script": SPIN, "symbols": symbols, "timeout": 60}
            jobs.append(requests.post(live.api("/execute"), json=body, timeout=10).json()["job_id"])
        end = time.monotonic() + 60  # (a shared machine can be slow to start them)
        while running(live, jobs) < 2:  # one chunk each: two pool processes at work
            assert time.monotonic() < end, [
                requests.get(live.api(f"/jobs/{j}"), timeout=10).json()["status"] for j in jobs
            ]
            time.sleep(0.2)

        statuses, timings = health_calls(live.api("/health"), 60, gap=0.05)

        assert running(live, jobs) >= 2  # still busy all along (each job takes 20 s)
        assert statuses.count(200) == 60, statuses
        assert timings[29] < 0.05 and timings[56] < 0.1, timings
    finally:
        for job_id in jobs:
            requests.delete(live.api(f"/jobs/{job_id}"), timeout=10)


def test_health_is_503_once_no_worker_has_been_alive_for_30_seconds(tmp_path, redis_url):
    from db.migrate import upgrade_to_head

    database_url = f"sqlite:///{tmp_path / 'calc.sqlite3'}"
    upgrade_to_head(database_url)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    port = free_port()
    with open(tmp_path / "web.log", "ab") as log:
        web = start_web(env, log, port)
    worker = start_worker(env, "lonely", tmp_path)
    url = f"http://127.0.0.1:{port}/api/custom-calculations/health"
    try:
        end = time.monotonic() + 60
        while True:
            assert time.monotonic() < end, "the service did not become healthy"
            try:
                answer = requests.get(url, timeout=5)
                # Healthy, and its pool processes said what their sandboxes got.
                if answer.status_code == 200 and answer.json()["checks"]["sandbox"] != "unknown":
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        assert answer.json()["checks"]["sandbox"] == "full"  # this kernel allows every step

        os.killpg(worker.pid, signal.SIGKILL)  # no goodbye: only its heartbeats stop
        worker.wait(timeout=10)
        killed = time.monotonic()
        first_503 = None
        while time.monotonic() - killed < ALIVE_SECONDS + 10:
            answer = requests.get(url, timeout=5)
            if answer.status_code == 503:
                first_503 = time.monotonic() - killed
                assert answer.json() == {
                    "status": "unavailable",
                    "checks": {"database": "ok", "redis": "ok", "workers": 0, "sandbox": "unknown"},
                }
                break
            assert answer.json()["checks"]["workers"] == 1
            time.sleep(0.5)
        assert first_503 is not None, "still 200 long after the only worker died"
        # Alive until 30 s after its last beat (beats are 2 s apart), then 503 at once.
        assert ALIVE_SECONDS - 3 <= first_503 <= ALIVE_SECONDS + 1.5, first_503
    finally:
        stop(worker)
        stop(web)
