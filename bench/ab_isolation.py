"""What process isolation (DESIGN.md layer 3) costs a job end to end: A/B against a worker
that runs chunks in its own process.

    python -m bench.ab_isolation --url http://127.0.0.1:8000 [--rounds 4] [--runs 15]

Start the API alone first (``.venv/bin/honcho start web``, same DATABASE_URL and REDIS_URL):
this script starts and stops the workers itself, two prefork processes as in the Procfile,
alternating an isolated worker (the service's own) and one patched to run each chunk in
process, so that the machine's noise falls on both alike. Each round prints the median of
``--runs`` 200-symbol jobs (after a warm-up); the last line gives the medians over rounds
and the ratio. The in-process worker exists only inside this benchmark: the service has no
setting that turns isolation off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import requests

from bench.run_bench import end_to_end, universe
from bench.workload import SCRIPTS
from settings import PROJECT_ROOT

_WORKER_NAME = "ab-isolation@%h"
_IN_PROCESS = """
import workers.jobs
from sandbox.executor import run_batch_in_process
workers.jobs.run_batch = run_batch_in_process
from workers.celery_app import app
app.worker_main(["worker", "--loglevel", "WARNING", "--pool", "prefork",
                 "--concurrency", "2", "-n", NAME])
""".replace("NAME", repr(_WORKER_NAME))

_ISOLATED = [
    "-m", "celery", "-A", "workers.celery_app", "worker", "--loglevel", "WARNING",
    "--pool", "prefork", "--concurrency", "2", "-n", _WORKER_NAME,
]  # fmt: skip


def start_worker(kind: str) -> subprocess.Popen:
    args = ["-c", _IN_PROCESS] if kind == "in-process" else _ISOLATED
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = requests.get(f"{url}/api/custom-calculations/health", timeout=5).json()
        if health["checks"].get("workers") == 1:
            return
        time.sleep(0.5)
    raise SystemExit("the worker did not come up (is another worker running? stop it)")


def one_round(url: str, kind: str, code: str, symbols: list[str], runs: int) -> float:
    worker = start_worker(kind)
    try:
        wait_ready(url)
        end_to_end(url, code, symbols)  # warm-up: the worker's window cache, connections
        end_to_end(url, code, symbols)
        return statistics.median(end_to_end(url, code, symbols) for _ in range(runs))
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    symbols, _ = universe(args.size)
    results: dict[tuple[str, str], list[float]] = {}
    for round_no in range(1, args.rounds + 1):
        for name, code in SCRIPTS.items():
            for kind in ("in-process", "isolated"):
                median = one_round(args.url, kind, code, symbols, args.runs)
                results.setdefault((name, kind), []).append(median)
                print(f"round {round_no} {name:>12} {kind:>10}: p50 {median * 1000:6.1f} ms")
    print()
    for name in SCRIPTS:
        inproc = statistics.median(results[(name, "in-process")])
        isolated = statistics.median(results[(name, "isolated")])
        print(
            f"{args.size} x {name:>12}: in-process {inproc * 1000:6.1f} ms, isolated "
            f"{isolated * 1000:6.1f} ms, isolation adds {100 * (isolated / inproc - 1):+.0f}%"
        )


if __name__ == "__main__":
    main()
