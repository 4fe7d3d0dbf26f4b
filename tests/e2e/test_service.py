"""End to end over real HTTP, gunicorn and a prefork Celery worker: the paths a user takes,
and the hostile scripts that must not take the service down."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time

import pytest
import requests

from settings import PROJECT_ROOT
from tests.api.helpers import closes, sample_symbols
from tests.concurrency import at_once
from tests.e2e.conftest import SUFFIX, children_of

pytestmark = pytest.mark.slow

MOMENTUM = """
window = params.get("window", 20)
r = returns(close)[-60:]
vol = stdev([x for x in r if x is not None])
result = (close[-1] / close[-1 - window] - 1) / vol if vol else None
"""


def expected_momentum(symbol: str, window: int = 20) -> float:
    series = [c for _, c in closes(symbol.removesuffix(SUFFIX))][-252:]
    rets = [series[i] / series[i - 1] - 1 for i in range(1, len(series))][-60:]
    vol = statistics.stdev(rets)
    return (series[-1] / series[-1 - window] - 1) / vol


def assert_normal_job_completes(live) -> None:
    job = live.run({"script": "result = close[-1]", "symbols": ["AAPL", "MSFT"]})
    assert job["status"] == "completed"
    assert job["results"]["AAPL"] == closes("AAPL")[-1][1]


def test_500_symbol_job_over_http(live):
    real = sample_symbols()[:300]
    symbols = real + [s + SUFFIX for s in sample_symbols()[:200]]
    assert len(set(symbols)) == 500
    response = requests.post(
        live.api("/execute"),
        json={"script": MOMENTUM, "symbols": symbols, "params": {"window": 20}},
        timeout=30,
    )
    assert response.status_code == 202
    assert response.headers["Location"].endswith(response.json()["job_id"])
    job = live.poll(response.json()["job_id"])
    assert job["status"] == "completed", job["error"]
    assert list(job["results"]) == symbols
    assert job["progress"] == {"done": 500, "total": 500}
    for symbol in ("AAPL", "MSFT", "JPM", "AAPL" + SUFFIX, symbols[-1]):
        assert job["results"][symbol] == pytest.approx(expected_momentum(symbol), rel=1e-9)
    # Symbols with under 61 bars in the window fail with their own error; all others succeed.
    assert all(v is not None for s, v in job["results"].items() if s not in job["errors"])


def test_busy_loop_that_swallows_exceptions_is_stopped(live):
    code = (
        "x = 0\nif symbol == 'AAPL':\n    while True:\n        try:\n            x += 1\n"
        "        except:\n            pass\nresult = 1"
    )
    job = live.run({"script": code, "symbols": ["AAPL", "MSFT"]})
    assert job["status"] == "completed"
    assert job["errors"]["AAPL"]["type"] == "TimeoutError"
    assert job["results"]["MSFT"] == 1
    assert_normal_job_completes(live)


def test_memory_bomb_is_a_memory_error(live):
    code = "if symbol == 'AAPL':\n    x = [1] * (10**9)\nresult = 2"
    job = live.run({"script": code, "symbols": ["AAPL", "MSFT"]})
    assert job["errors"]["AAPL"]["type"] == "MemoryError"
    assert job["results"]["MSFT"] == 2
    assert_normal_job_completes(live)


def test_a_crashed_sandbox_child_fails_only_its_symbol(live):
    code = "if symbol == 'AAPL':\n    while True:\n        pass\nresult = 3"
    response = requests.post(
        live.api("/execute"), json={"script": code, "symbols": ["AAPL", "MSFT"]}, timeout=10
    )
    job_id = response.json()["job_id"]
    crashed = False
    end = time.monotonic() + 0.9  # the CPU budget is 1 s: find the child before it is killed
    while time.monotonic() < end and not crashed:
        for pool_pid in live.pool_pids():
            for child in children_of(pool_pid, busy=True):
                os.kill(child, signal.SIGSEGV)
                crashed = True
        time.sleep(0.01)
    assert crashed, "no sandbox child was seen"
    job = live.poll(job_id)
    assert job["errors"]["AAPL"]["type"] == "RuntimeError"
    assert "SIGSEGV" in job["errors"]["AAPL"]["message"]
    assert job["results"]["MSFT"] == 3
    assert_normal_job_completes(live)


def test_job_over_its_wall_clock_limit_times_out_with_partial_results(live):
    # The first five symbols finish at once, the others spin until a limit stops them: which
    # finish does not hang on how fast the machine is (a loop of ~0.3 s per symbol once
    # finished none within the 1.5 s on a slow day).
    code = (
        "if symbol not in params['quick']:\n"
        "    x = 0\n"
        "    for i in range(10 ** 9):\n"
        "        x += i\n"
        "result = 1"
    )
    symbols = sample_symbols()[:40]
    body = {"script": code, "symbols": symbols, "params": {"quick": symbols[:5]}, "timeout": 1.5}
    job = live.run(body)
    assert job["status"] == "timed_out"
    assert set(job["results"]) == set(symbols)
    finished = [s for s, v in job["results"].items() if v == 1]
    timed_out = [s for s, e in job["errors"].items() if e["type"] == "TimeoutError"]
    assert finished and timed_out
    assert len(finished) + len(timed_out) == len(symbols)
    assert_normal_job_completes(live)


def test_cancel_stops_a_running_job(live):
    code = "x = 0\nfor i in range(3000000):\n    x += i\nresult = 1"
    symbols = sample_symbols()[:60]
    response = requests.post(
        live.api("/execute"), json={"script": code, "symbols": symbols}, timeout=10
    )
    job_id = response.json()["job_id"]
    time.sleep(0.8)
    cancelled = requests.delete(live.api(f"/jobs/{job_id}"), timeout=10)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(1.0)
    job = live.poll(job_id)
    assert job["status"] == "cancelled"
    done = sum(1 for v in job["results"].values() if v == 1)
    assert done < len(symbols)
    # Its children are stopped: soon no sandbox child is left running under the pool.
    end = time.monotonic() + 5
    while time.monotonic() < end and any(children_of(p, busy=True) for p in live.pool_pids()):
        time.sleep(0.1)
    assert not any(children_of(p, busy=True) for p in live.pool_pids())
    assert_normal_job_completes(live)


def test_canary_in_the_worker_environment_never_reaches_an_answer(live):
    attempts = [
        "result = len(str(info)) + len(str(params))\nprint(info, params)",
        "try:\n    x = 1/0\nexcept Exception as e:\n    print(e.args)\nresult = 1",
    ]
    for code in attempts:
        response = requests.post(
            live.api("/execute"), json={"script": code, "symbols": ["AAPL"], "wait": 20}, timeout=30
        )
        assert "canary-e2e-7f3a9c" not in response.text


def test_concurrent_submits_all_complete(live):
    symbols = sample_symbols()[:50]
    results = at_once(
        lambda: live.run({"script": "result = sma(close, 5)[-1]", "symbols": symbols}), 8
    )
    assert len(results) == 8
    assert all(j["status"] == "completed" and not j["errors"] for j in results)


def test_a_second_server_on_the_same_port_refuses_to_start(live):
    """Each gunicorn process listens with SO_REUSEPORT (gunicorn.conf.py), which would let a
    second server share the port unnoticed: it must refuse, and the first keep answering."""
    from tests.e2e.conftest import BIN

    port = live.url.rsplit(":", 1)[1]
    command = ["-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "api:create_app()"]
    second = subprocess.run(
        [str(BIN / "gunicorn"), *command],
        check=False,
        cwd=PROJECT_ROOT,
        env=live.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "cannot listen" in second.stderr + second.stdout
    assert_normal_job_completes(live)
