"""What process isolation (DESIGN.md layer 3) costs a job end to end: each 200-symbol job run
in forked sandbox children (the service's own path) against the same job run in process.

    python -m bench.ab_isolation --url http://127.0.0.1:8000 [--pairs 60]

Start the API alone first (``.venv/bin/honcho start web``, same DATABASE_URL and REDIS_URL):
this script starts one worker itself, two prefork processes as in the Procfile, patched so
that a job whose params carry ``_ab: "in-process"`` runs its chunks in the worker process
(a benchmark-only stand-in for the worker before isolation: the service has no such
setting); every other job goes through the service's own isolated path. Jobs alternate, an
isolated one and an in-process one in turn (which goes first alternates too), so that each
pair runs back to back and the machine's drifts fall on both alike. Earlier versions of this
benchmark restarted the worker for each kind and compared rounds: on this shared machine a
round's median moved by ±15%, more than what was measured.

For each script it prints the medians of both kinds and the median of the pairs' own ratios,
with their quartiles.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import requests

from bench.common import end_to_end, universe
from bench.workload import SCRIPTS
from settings import PROJECT_ROOT

_WORKER_NAME = "ab-isolation@%h"
AB_PARAM = "_ab"
_AB_WORKER = f"""
import workers.jobs
from sandbox.executor import run_batch, run_batch_in_process

def by_params(source, items, *, params, limits):
    run = run_batch_in_process if params.get({AB_PARAM!r}) == "in-process" else run_batch
    return run(source, items, params=params, limits=limits)

workers.jobs.run_batch = by_params
from workers.celery_app import app
app.worker_main(["worker", "--loglevel", "WARNING", "--pool", "prefork",
                 "--concurrency", "2", "-n", {_WORKER_NAME!r}])
"""
KINDS = ("in-process", "isolated")


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _AB_WORKER],
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


def one_job(url: str, kind: str, code: str, symbols: list[str]) -> float:
    return end_to_end(url, code, symbols, params={AB_PARAM: kind})


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    symbols, _ = universe(args.size)
    times: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    worker = start_worker()
    try:
        wait_ready(args.url)
        for code in SCRIPTS.values():  # warm-up: the window cache, connections, children
            for kind in KINDS * 2:
                one_job(args.url, kind, code, symbols)
        for pair in range(args.pairs):
            for name, code in SCRIPTS.items():
                order = KINDS if pair % 2 == 0 else KINDS[::-1]
                got = {kind: one_job(args.url, kind, code, symbols) for kind in order}
                for kind, seconds in got.items():
                    times.setdefault((name, kind), []).append(seconds)
                ratios[name].append(got["isolated"] / got["in-process"])
    finally:
        worker.terminate()
        worker.wait(30)
    print(f"{args.size}-symbol jobs, {args.pairs} pairs per script (in-process, isolated):")
    for name in SCRIPTS:
        inproc = statistics.median(times[(name, "in-process")])
        isolated = statistics.median(times[(name, "isolated")])
        q1, q2, q3 = (100 * (r - 1) for r in quartiles(ratios[name]))
        print(
            f"{name:>12}: in-process p50 {inproc * 1000:6.1f} ms, isolated p50 "
            f"{isolated * 1000:6.1f} ms; isolation adds {q2:+.0f}% (median of pairs; "
            f"quartiles {q1:+.0f}% to {q3:+.0f}%)"
        )


if __name__ == "__main__":
    main()
