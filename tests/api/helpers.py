"""Small helpers the API tests share: submit, poll, and read the sample's real prices."""

from __future__ import annotations

import csv
import gzip
import time
from functools import cache

from tests.conftest import SAMPLE_PRICES, SAMPLE_STOCKS

BASE = "/api/custom-calculations"
# panel.csv's header for horizons [1, 5], as the evaluation tests ask: the value, each horizon's
# quantile, then each horizon's forward return. One literal, so the API tests and the end-to-end
# tests check the same header.
PANEL_HEADER_1_5 = ["date", "symbol", "value", "quantile_1", "quantile_5", "forward_1", "forward_5"]


def make_token(runner, user: str) -> str:
    """A new bearer token for ``user``, made by the CLI as an operator would."""
    result = runner.invoke(args=["tokens", "create", user])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def submit(client, body: dict, **headers):
    return client.post(f"{BASE}/execute", json=body, headers=headers)


def wait_done(client, job_id: str, timeout: float = 60.0, headers: dict | None = None) -> dict:
    """Poll the job as the frontend does until it is finished."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = client.get(f"{BASE}/jobs/{job_id}", headers=headers or {}).get_json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def run_job(client, body: dict, timeout: float = 60.0) -> dict:
    response = submit(client, {**body, "wait": 20})
    assert response.status_code in (200, 202), response.get_json()
    job = response.get_json()
    return job if response.status_code == 200 else wait_done(client, job["job_id"], timeout)


@cache
def closes(symbol: str) -> list[tuple[str, float]]:
    """(date, close) of a symbol from the shipped sample, oldest first."""
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as f:
        rows = [(r["date"], float(r["close"])) for r in csv.DictReader(f) if r["symbol"] == symbol]
    return sorted(rows)


@cache
def sample_symbols() -> list[str]:
    with open(SAMPLE_STOCKS, newline="") as f:
        return [r["symbol"] for r in csv.DictReader(f)]
