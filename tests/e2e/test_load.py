"""200 clients at once, each submitting a job of 50 to 200 symbols and waiting for it."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.api.helpers import closes, sample_symbols
from tests.e2e.conftest import SUFFIX

pytestmark = pytest.mark.slow

CODE = "result = close[-1] - close[-2]"


def test_200_concurrent_clients_all_get_correct_results(live):
    universe = sample_symbols() + [s + SUFFIX for s in sample_symbols()[:200]]
    rng = random.Random(2026)
    jobs = [rng.sample(universe, rng.randint(50, 200)) for _ in range(200)]
    statuses: list[int] = []

    def client(symbols: list[str]) -> dict:
        session = requests.Session()
        response = session.post(
            live.api("/execute"), json={"script": CODE, "symbols": symbols, "wait": 30}, timeout=60
        )
        statuses.append(response.status_code)
        job = response.json()
        if response.status_code == 202:
            job = live.poll(job["job_id"], timeout=240)
        return job

    with ThreadPoolExecutor(max_workers=200) as pool:
        finished = list(pool.map(client, jobs))
    assert all(status in (200, 202) for status in statuses), sorted(set(statuses))
    for symbols, job in zip(jobs, finished, strict=True):
        assert job["status"] == "completed", job.get("error")
        assert list(job["results"]) == symbols
        assert job["errors"] == {}
    some = finished[0]
    for symbol in jobs[0][:5]:
        series = [c for _, c in closes(symbol.removesuffix(SUFFIX))]
        assert some["results"][symbol] == pytest.approx(series[-1] - series[-2])
