"""Fairness: one user holds many busy jobs; how long does another user's one-symbol job take?

    CALC_AUTH=required make run &
    python -m bench.fairness --url http://127.0.0.1:8000 [--busy-jobs 20] [--symbols 20]

Two users with tokens made in the service's database (``DATABASE_URL``). The first submits
``--busy-jobs`` jobs of ``--symbols`` symbols each, every symbol spinning about a third of a
second in the sandbox; once they run, the second submits ``result = close[-1]`` for one symbol
and the time from its submit to its completion is printed (issue 17 item 6: under 5 s). The
busy jobs are cancelled at the end.
"""

from __future__ import annotations

import argparse
import time

import requests

from bench.common import API, make_tokens, universe

BUSY = "x = 0\nfor i in range(SPIN):\n    x = x + i\nresult = x"
SMALL = "result = close[-1]"


def submit(url: str, token: str, code: str, symbols: list[str]) -> str:
    response = requests.post(
        f"{url}{API}/execute",
        json={"script": code, "symbols": symbols, "timeout": 60},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["job_id"]


def wait(url: str, token: str, job_id: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = requests.get(
            f"{url}{API}/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise SystemExit(f"job {job_id} unfinished after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--busy-jobs", type=int, default=20)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--spin", type=int, default=4_000_000, help="loop steps a busy symbol")
    args = parser.parse_args()
    symbols, _ = universe(args.symbols)
    busy_user, small_user = make_tokens(2)
    code = BUSY.replace("SPIN", str(args.spin))
    busy = [
        submit(args.url, busy_user, f"{code}\n# {i} {time.time()}", symbols)
        for i in range(args.busy_jobs)
    ]
    time.sleep(2.0)  # the busy user's chunks hold every worker process
    started = time.perf_counter()
    job = wait(args.url, small_user, submit(args.url, small_user, SMALL, symbols[:1]))
    elapsed = time.perf_counter() - started
    done = sum(
        requests.get(
            f"{args.url}{API}/jobs/{j}",
            headers={"Authorization": f"Bearer {busy_user}"},
            timeout=30,
        ).json()["status"]
        == "completed"
        for j in busy
    )
    for j in busy:
        requests.delete(
            f"{args.url}{API}/jobs/{j}",
            headers={"Authorization": f"Bearer {busy_user}"},
            timeout=30,
        )
    print(
        f"{args.busy_jobs} busy jobs of {args.symbols} symbols from one user ({done} completed by "
        f"then); the other user's one-symbol job: {job['status']} in {elapsed:.2f} s"
    )


if __name__ == "__main__":
    main()
