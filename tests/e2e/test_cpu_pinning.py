"""gunicorn as the Procfile runs it gives each API process a CPU of its own, threads and all,
gives a replacement process the CPU the dead one left, and leaves them free when told to."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api.cpu_pinning import least_used_cpu
from settings import PROJECT_ROOT
from tests.e2e.conftest import BIN, children_of, free_port, stop

pytestmark = pytest.mark.slow

ALLOWED = os.sched_getaffinity(0)
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="one CPU: nothing to pin to")


def test_least_used_cpu_spreads_processes_and_refills_a_freed_cpu():
    assert least_used_cpu({0, 1}, []) == 0
    assert least_used_cpu({0, 1}, [0]) == 1
    assert least_used_cpu({0, 1, 2, 3}, [0, 1, 3]) == 2  # the one a dead process left
    assert least_used_cpu({0, 1}, [0, 1, 0]) == 1  # more processes than CPUs: evenly
    assert least_used_cpu({2, 5}, [2, None]) == 5  # only allowed CPUs; unpinned ones aside


@pytest.fixture
def start_api(tmp_path, redis_url) -> Iterator:
    from db.migrate import upgrade_to_head

    database_url = f"sqlite:///{tmp_path / 'calc.sqlite3'}"
    upgrade_to_head(database_url)
    started = []

    def start(**env: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        with open(tmp_path / "web.log", "ab") as log:
            web = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "-c",
                    "gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "api:create_app()",
                ],
                cwd=PROJECT_ROOT,
                env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(web)
        url = f"http://127.0.0.1:{port}/api/custom-calculations/jobs"  # cheap: asks no worker
        processes_serving(web, url, count=2)
        return web, url

    yield start
    for web in started:
        stop(web)


def processes_serving(web: subprocess.Popen, url: str, count: int) -> set[int]:
    """Wait until ``web`` has ``count`` processes and has answered over many connections
    (each process then holds its request threads); answer the processes."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert web.poll() is None, "gunicorn exited"
        processes = children_of(web.pid)
        if len(processes) == count:
            try:
                for _ in range(30):  # a new connection each: both processes get some
                    requests.get(url, timeout=5)
                return children_of(web.pid)
            except requests.ConnectionError:
                pass
        time.sleep(0.2)
    raise AssertionError("gunicorn's processes did not come up")


def cpus_of_threads(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(tid.name)) for tid in Path(f"/proc/{pid}/task").iterdir()]


@needs_two_cpus
def test_each_api_process_runs_on_a_cpu_of_its_own(start_api):
    web, url = start_api()
    processes = processes_serving(web, url, count=2)
    pinned = {}
    for pid in processes:
        threads = cpus_of_threads(pid)
        assert len(threads) >= 2  # the poller and the request threads it started
        assert all(len(cpus) == 1 for cpus in threads), threads  # every thread is pinned
        assert len({frozenset(cpus) for cpus in threads}) == 1  # all to the process's CPU
        pinned[pid] = next(iter(threads[0]))
    assert len(set(pinned.values())) == 2  # and the two processes to two CPUs
    assert set(pinned.values()) <= ALLOWED

    killed = min(pinned)
    os.kill(killed, signal.SIGKILL)  # gunicorn replaces it: on the CPU it left
    end = time.monotonic() + 30
    while killed in children_of(web.pid) and time.monotonic() < end:
        time.sleep(0.1)
    replacement = processes_serving(web, url, count=2) - set(pinned)
    assert len(replacement) == 1
    assert os.sched_getaffinity(replacement.pop()) == {pinned[killed]}


@needs_two_cpus
def test_api_processes_are_left_free_when_pinning_is_off(start_api):
    web, url = start_api(CALC_API_PIN_CPUS="off")
    for pid in processes_serving(web, url, count=2):
        assert all(cpus == ALLOWED for cpus in cpus_of_threads(pid))
