"""A real prefork Celery worker where the kernel refuses namespaces, as in a Docker container
with the default seccomp profile (tests/sandbox/kernel_refuses.py puts that filter on the
worker before it starts): with CALC_SANDBOX_CONFINEMENT strict it says so in one log line per
pool process, runs no user code and makes /health 503; restarted relaxed, it runs and /health
says what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.api.helpers import sample_symbols
from tests.conftest import SAMPLE_PRICES, SAMPLE_STOCKS
from tests.e2e.conftest import free_port, start_web, start_worker, stop

pytestmark = pytest.mark.slow

MISSING = (
    "relaxed (missing: network namespace: Operation not permitted, IPC namespace: Operation not "
    "permitted, mount namespace: Operation not permitted, PID namespace: Operation not permitted)"
)


def _worker(env: dict[str, str], mode: str, log: Path) -> subprocess.Popen:
    """``celery worker`` under the refusing filter, in ``mode`` as an operator typed it."""
    return start_worker(
        {**env, "CALC_SANDBOX_CONFINEMENT": mode},
        "boxed",
        log.parent,
        log=log,
        under=(sys.executable, "-m", "tests.sandbox.kernel_refuses"),
        events=False,
    )


def _sandbox_reported(url: str, before: tuple[str, ...] = ("unknown",)) -> requests.Response:
    """/health once a live worker said what its sandbox got (not one of ``before``)."""
    end = time.monotonic() + 90
    while time.monotonic() < end:
        try:
            answer = requests.get(url, timeout=5)
            checks = answer.json()["checks"]
            if checks["workers"] and checks["sandbox"] not in before:
                return answer
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError("the worker never said what its sandbox got")


def _confinement_lines(log: Path, processes: int) -> list[str]:
    """The log's lines about sandbox confinement once each of ``processes`` pool processes
    has had time to write its own (/health answers after the first; the others follow), and
    a moment longer, so that a line too many would be seen too."""
    end = time.monotonic() + 30
    while True:
        lines = [line for line in log.read_text().splitlines() if "sandbox confinement" in line]
        if len(lines) >= processes or time.monotonic() > end:
            time.sleep(0.5)
            return [line for line in log.read_text().splitlines() if "sandbox confinement" in line]
        time.sleep(0.2)


def _run(api: str, symbols: list[str]) -> dict:
    body = {"script": "result = close[-1]", "symbols": symbols, "wait": 20}
    job = requests.post(f"{api}/execute", json=body, timeout=30).json()
    end = time.monotonic() + 60
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < end, job
        time.sleep(0.2)
        job = requests.get(f"{api}/jobs/{job['job_id']}", timeout=10).json()
    return job


def _names_under(pid: int) -> list[str]:
    """The command names of ``pid``'s descendants."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            names[int(entry.name)] = stat[stat.index("(") + 1 : stat.rindex(")")]
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += [names[child] for child in frontier]
    return found


def test_refused_confinement_strict_then_relaxed(tmp_path, redis_url):
    from db.loader import load_prices_csv, load_stocks_csv
    from db.migrate import upgrade_to_head
    from db.session import make_engine, session_scope

    database_url = f"sqlite:///{tmp_path / 'calc.sqlite3'}"
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        load_stocks_csv(SAMPLE_STOCKS, session=session)
    with session_scope(engine) as session:
        load_prices_csv(SAMPLE_PRICES, session=session)
    engine.dispose()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    port = free_port()
    with open(tmp_path / "web.log", "ab") as log:
        web = start_web(env, log, port)
    api = f"http://127.0.0.1:{port}/api/custom-calculations"
    symbols = sample_symbols()[:6]
    strict_log, relaxed_log = tmp_path / "strict.log", tmp_path / "relaxed.log"
    worker = _worker(env, " STRICT ", strict_log)
    try:
        answer = _sandbox_reported(f"{api}/health")
        assert answer.status_code == 503
        assert answer.json()["checks"] == {
            "database": "ok", "redis": "ok", "workers": 1, "sandbox": "refused"
        }  # fmt: skip
        refused = _confinement_lines(strict_log, 2)
        assert len(refused) == 2, refused  # one line per pool process, nothing else about it
        for line in refused:
            assert (
                "sandbox confinement refused: the kernel refused sandbox confinement step "
                "network namespace: Operation not permitted; no user code will run"
            ) in line

        job = _run(api, symbols)
        assert job["status"] == "failed"
        assert set(job["errors"]) == set(symbols)
        for error in job["errors"].values():
            assert error["type"] == "WorkerError"
            assert "the kernel refused its sandbox's confinement" in error["message"]
        assert all(job["results"][s] is None for s in symbols)
        names = _names_under(worker.pid)  # nothing ran: no sandbox child was ever made
        assert "calc-forksrv" in names and "calc-sandbox" not in names, names
        stop(worker)

        worker = _worker(env, "relaxed", relaxed_log)  # the same node, restarted
        answer = _sandbox_reported(f"{api}/health", ("unknown", "refused"))
        assert answer.status_code == 200
        assert answer.json()["checks"]["sandbox"] == MISSING
        said = _confinement_lines(relaxed_log, 2)
        assert len(said) == 2 and all(f"sandbox confinement: {MISSING}" in s for s in said), said

        job = _run(api, symbols)
        assert job["status"] == "completed", job
        assert job["errors"] == {} and all(isinstance(job["results"][s], float) for s in symbols)
    finally:
        stop(worker)
        stop(web)
