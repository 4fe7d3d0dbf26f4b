"""Lost and stopped workers, and a second worker node: no job is lost, every symbol counted once."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.api.helpers import sample_symbols
from tests.e2e.conftest import SUFFIX, stop

pytestmark = pytest.mark.slow

SLOW = "x = 0\nfor i in range(500000):\n    x += i\nresult = len(close) + x * 0"  # ~50 ms a symbol


def submit(live, symbols, code=SLOW, timeout=50):
    response = requests.post(
        live.api("/execute"),
        json={"script": code, "symbols": symbols, "timeout": timeout},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def test_a_worker_process_killed_mid_job_loses_nothing(live):
    symbols = sample_symbols()[:240]
    job_id = submit(live, symbols)
    time.sleep(1.0)
    victims = live.pool_pids()
    assert victims
    os.kill(min(victims), signal.SIGKILL)
    job = live.poll(job_id, timeout=90)
    assert job["status"] == "completed", job["error"]
    assert list(job["results"]) == symbols
    assert job["progress"] == {"done": 240, "total": 240}
    assert job["errors"] == {}
    assert all(isinstance(v, int) and 0 < v <= 252 for v in job["results"].values())


def test_chunks_spread_over_two_worker_nodes_and_sigterm_hands_back(live):
    second = live.start_worker("e2e2")
    try:
        # A worker beats (and /health counts it) from its start; it takes tasks once it says
        # "ready": wait for both, or the first node may take every chunk before the second consumes.
        log = live.logs / "worker-e2e2.log"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            health = requests.get(live.api("/health"), timeout=5).json()
            if health["checks"]["workers"] >= 2 and " ready." in log.read_text():
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the second worker did not join")
        symbols = sample_symbols()[:300] + [s + SUFFIX for s in sample_symbols()[:200]]
        job_id = submit(live, symbols)
        time.sleep(1.5)
        os.kill(second.pid, signal.SIGTERM)  # warm shutdown: finish or hand back its chunks
        job = live.poll(job_id, timeout=90)
        assert job["status"] == "completed", job["error"]
        assert job["errors"] == {}
        logs = {name: (live.logs / f"worker-{name}.log").read_text() for name in ("e2e1", "e2e2")}
        assert all(job_id in text and "chunk done" in text for text in logs.values()), (
            "both worker nodes should have run chunks of the job"
        )
        second.wait(timeout=60)
    finally:
        stop(second)
