"""An evaluation's chunks share the workers fairly: when another user's work waits, a chunk
that has run ``CALC_EVALUATION_CHUNK_SECONDS`` hands its unfinished symbols back to the fair
queue, and the job still ends with every symbol-date recorded once.

The entries run here as a worker process runs them (``workers.fair_run.run_next``, the body
of the ``calc.run_next`` task) on the real app, Redis, sample data and sandbox.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid

import pytest

from sandbox.compiler import code_sha256
from tests.api.helpers import BASE
from workers.celery_app import configure
from workers.fair_run import run_next
from workers.fairqueue import FairQueue
from workers.jobspec import JobSpec
from workers.runtime import Runtime
from workers.submit import submit_job

# BHF and BHGE are listed late in the sample (2017): their early dates are NoData.
SYMBOLS = ["AAPL", "MSFT", "AMZN", "IBM", "CSCO", "BHF", "BHGE", "GS", "BAC", "C", "HD", "CAT"]
# About a millisecond a run: a chunk of 1,000 runs lasts past its first flush (half a second).
SCRIPT = """
busy = 0
for i in range(20000):
    busy += i
result = close[-1] / close[-21] - 1
"""
BODY = {
    "script": SCRIPT,
    "symbols": SYMBOLS,
    "start": "2017-01-03",
    "end": "2017-12-29",
    "every": 1,
    "horizons": [1, 5],
}


def run_entries(rt: Runtime, job_id: str, *, most: int = 200) -> int:
    """Run fair-queue entries as worker processes would, until ``job_id`` is finished;
    answer how many were run."""
    store = rt.store()
    for count in range(1, most + 1):
        run_next(uuid.uuid4().hex, rt=rt, celery=configure(rt.settings), retry_chunk=_no_retry)
        status = store.status(job_id)
        if status is not None and status.finished:
            return count
    raise AssertionError(f"{job_id} still unfinished after {most} entries")


def _no_retry(job_id: str, chunk_no: int, symbols: list[str]) -> None:
    raise AssertionError(f"chunk {chunk_no} of {job_id} met an outage")


def submit(client, body: dict) -> str:
    response = client.post(f"{BASE}/evaluate", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def panel(client, job_id: str) -> list[dict[str, str]]:
    response = client.get(f"{BASE}/jobs/{job_id}/panel.csv")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def another_users_job(rt: Runtime) -> str:
    """A small /execute job of another user, waiting in the fair queue."""
    spec = JobSpec.new(
        owner="bob",
        code="result = close[-1]",
        code_sha256=code_sha256("result = close[-1]"),
        symbols=["AAPL", "MSFT"],
        params={},
        lookback=20,
        as_of="2017-06-30",
        wall_seconds=30,
    )
    submit_job(spec, store=rt.store(), celery=configure(rt.settings))
    return spec.job_id


@pytest.fixture
def settings(settings):
    # Chunks of whole symbols, several per job; they hand back at their first flush.
    return settings.with_overrides(worker_processes=2, min_chunk_size=1000)


def test_a_chunk_hands_back_to_another_user_and_loses_no_symbol_date(client, settings, caplog):
    # The same evaluation with no one else waiting: the panel to compare against (another
    # comment, so that the result cache does not answer the second run).
    alone = Runtime(settings)
    reference = submit(client, {**BODY, "script": BODY["script"] + "\n# alone"})
    run_entries(alone, reference)

    yielding = Runtime(settings.with_overrides(evaluation_chunk_seconds=0.0))
    job_id = submit(client, BODY)
    bob = another_users_job(yielding)
    with caplog.at_level(logging.INFO, logger="workers.fair_run"):
        run_entries(yielding, job_id)
    handed_back = [r for r in caplog.records if r.getMessage() == "chunk yields"]
    assert handed_back, "no chunk handed its symbols back while bob waited"
    assert {getattr(r, "job_id", None) for r in handed_back} == {job_id}

    job = client.get(f"{BASE}/jobs/{job_id}").get_json()
    assert job["status"] == "completed"
    total = job["evaluation"]["dates"] * len(SYMBOLS)
    assert job["progress"] == {"done": total, "total": total}
    assert job["evaluation"]["runs"] == total
    rows = panel(client, job_id)
    assert len({(r["date"], r["symbol"]) for r in rows}) == len(rows) == total
    expected = panel(client, reference)
    assert [(r["date"], r["symbol"], r["value"]) for r in rows] == [
        (r["date"], r["symbol"], r["value"]) for r in expected
    ]
    # Each failed run (NoData before a listing, IndexError in its first weeks) counted once
    # in the tallies, as in the run that never handed back.
    errors = job["evaluation"]["errors_by_type"]
    assert sum(errors.values()) == sum(1 for r in rows if r["value"] == "") > 0
    reference_job = client.get(f"{BASE}/jobs/{reference}").get_json()
    assert errors == reference_job["evaluation"]["errors_by_type"]
    # Bob's job ran meanwhile, not after the whole evaluation.
    bob_job = yielding.store().load(bob, owner="bob").to_public()
    assert bob_job["status"] == "completed"


def test_with_no_one_waiting_a_chunk_runs_to_its_end(client, settings, caplog):
    rt = Runtime(settings.with_overrides(evaluation_chunk_seconds=0.0))
    job_id = submit(client, BODY)
    queue = FairQueue(rt.redis)
    assert not queue.others_waiting(None)
    with caplog.at_level(logging.INFO, logger="workers.fair_run"):
        entries = run_entries(rt, job_id)
    assert not [r for r in caplog.records if r.getMessage() == "chunk yields"]
    job = client.get(f"{BASE}/jobs/{job_id}").get_json()
    assert job["status"] == "completed"
    assert entries == int(rt.store().fields(job_id)["chunks"]) > 1  # each planned chunk once
    assert job["progress"]["done"] == job["progress"]["total"]
