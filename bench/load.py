"""Many clients at once: each submits one job of 50-200 symbols and waits for its result.

    python -m bench.load --url http://127.0.0.1:8000 --clients 200 [--tokens]

With ``--tokens`` each client gets its own user (tokens are made directly in the service's
database, ``DATABASE_URL``; start the service with ``CALC_AUTH=required``), so per-user
limits apply per client as in production. A client that gets 429 waits ``Retry-After`` and
retries, as a real client would. Prints jobs per second, submit latency and time to result
(p50/p99), and every non-2xx status seen.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.run_bench import universe
from bench.workload import WITH_HELPERS


def make_tokens(count: int) -> list[str]:
    from db.session import make_engine, session_scope
    from db.tokens import create_token
    from settings import Settings

    engine = make_engine(Settings.from_env().database_url)
    with session_scope(engine) as session:
        tokens = [create_token(f"load-{i}", session=session)[1] for i in range(count)]
    engine.dispose()
    return tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tokens", action="store_true", help="one user per client")
    args = parser.parse_args()
    symbols, _ = universe(200)
    tokens = make_tokens(args.clients) if args.tokens else [None] * args.clients
    rng = random.Random(7)
    jobs = [rng.sample(symbols, rng.randint(50, 200)) for _ in range(args.clients)]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    submit_s: list[float] = []
    result_s: list[float] = []
    outcomes: Counter[str] = Counter()
    start_gate = threading.Barrier(args.clients)

    def client(index: int) -> None:
        session = requests.Session()
        if tokens[index]:
            session.headers["Authorization"] = f"Bearer {tokens[index]}"
        start_gate.wait()
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            response = session.post(f"{args.url}/api/custom-calculations/execute",
                                    json={"script": WITH_HELPERS, "symbols": jobs[index]},
                                    timeout=60)  # fmt: skip
            with lock:
                statuses[response.status_code] += 1
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        with lock:
            submit_s.append(time.perf_counter() - t0)
        if response.status_code not in (200, 202):
            with lock:
                outcomes[f"submit {response.status_code}"] += 1
            return
        job = response.json()
        while job["status"] in ("queued", "running"):
            poll = session.get(f"{args.url}/api/custom-calculations/jobs/{job['job_id']}",
                               timeout=60)  # fmt: skip
            with lock:
                statuses[poll.status_code] += 1
            job = poll.json()
            if job.get("status") in ("queued", "running"):
                time.sleep(0.2)
        correct = job["status"] == "completed" and set(job["results"]) == set(jobs[index])
        with lock:
            result_s.append(time.perf_counter() - started)
            outcomes[job["status"] if correct else "wrong"] += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    elapsed = time.perf_counter() - began
    print(f"clients {args.clients}, wall {elapsed:.1f} s, jobs/s {len(result_s) / elapsed:.1f}")
    print(f"submit latency  p50 {statistics.median(submit_s) * 1000:.0f} ms  "
          f"p99 {percentile(submit_s, 0.99) * 1000:.0f} ms")  # fmt: skip
    print(f"time to result  p50 {statistics.median(result_s):.2f} s  "
          f"p99 {percentile(result_s, 0.99):.2f} s")  # fmt: skip
    print(f"outcomes {dict(outcomes)}  HTTP statuses {dict(statuses)}")


if __name__ == "__main__":
    main()
