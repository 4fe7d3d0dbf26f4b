"""Many clients at once: each submits one job of 50-200 symbols and waits for its result.

    python -m bench.load --url http://127.0.0.1:8000 --clients 200 [--tokens] [--symbols 50]

With ``--tokens`` each client gets its own user (tokens are made directly in the service's
database, ``DATABASE_URL``; start the service with ``CALC_AUTH=required``), so per-user
limits apply per client as in production. A client that gets 429 waits ``Retry-After`` and
retries, as a real client would. Prints jobs per second, submit latency and time to result
(p50/p99), every non-2xx status seen, and the CPU each part of the service (and this
generator) used from the first submit to the last answer to one: who had the cores while
the submits were being answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from collections import Counter

import uvloop

from bench.common import API, cpu_by_group, cpu_seconds, make_tokens, percentile, universe
from bench.http_client import HttpConnection
from bench.workload import WITH_HELPERS

POLL_SECONDS = 1.0  # how often a frontend polls a job it is waiting for


class LoadRun:
    """The shared tallies of one run; ``client`` is one analyst's session (asyncio and a lean
    HTTP client on uvloop, so the generator itself stays cheap next to the service on the
    same two cores)."""

    def __init__(self, url: str, jobs: list[list[str]], tokens: list[str | None]):
        self.url = url
        self.jobs = jobs
        self.tokens = tokens
        self.statuses: Counter[int] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.submit_s: list[float] = []
        self.refused_first = 0  # clients whose first submit was a 429
        self.result_s: list[float] = []
        self.cpu_at_gate: dict[str, float] = {}
        self.cpu_in_submits: dict[str, float] = {}

    async def client(self, index: int, start: asyncio.Event) -> None:
        auth = {"Authorization": f"Bearer {self.tokens[index]}"} if self.tokens[index] else {}
        http = HttpConnection(self.url)
        # Encoded before the gate opens: the generator shares the service's two cores, and
        # what it spends in the burst is time the service does not get.
        body = json.dumps({"script": WITH_HELPERS, "symbols": self.jobs[index]}).encode()
        submit = http.head("POST", f"{API}/execute", {**auth, "Content-Type": "application/json"},
                           body)  # fmt: skip
        await start.wait()
        started = time.perf_counter()
        try:
            attempts = 0
            while True:  # a 429 is retried after Retry-After, as a real client would
                t0 = time.perf_counter()
                response = await http.send(submit, body)
                self.statuses[response.status] += 1
                if response.status != 429:
                    break
                if attempts == 0:
                    self.refused_first += 1
                attempts += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            self.submit_s.append(time.perf_counter() - t0)
            if len(self.submit_s) == len(self.jobs):
                self.cpu_in_submits = self.cpu_spent_since_gate()
            if response.status not in (200, 202):
                self.outcomes[f"submit {response.status}"] += 1
                return
            job = json.loads(response.body)
            poll = http.head("GET", f"{API}/jobs/{job['job_id']}", auth)
            while job["status"] in ("queued", "running"):
                await asyncio.sleep(POLL_SECONDS)
                response = await http.send(poll, retry=True)
                self.statuses[response.status] += 1
                job = json.loads(response.body)
        finally:
            await http.close()
        correct = job["status"] == "completed" and set(job["results"]) == set(self.jobs[index])
        self.result_s.append(time.perf_counter() - started)
        self.outcomes[job["status"] if correct else "wrong"] += 1

    async def run(self) -> float:
        start = asyncio.Event()
        tasks = [asyncio.create_task(self.client(i, start)) for i in range(len(self.jobs))]
        await asyncio.sleep(0.5)  # every client is waiting at the gate
        self.cpu_at_gate = self.cpu_reading()
        began = time.perf_counter()
        start.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
        return time.perf_counter() - began

    @staticmethod
    def cpu_reading() -> dict[str, float]:
        return {**cpu_by_group(), "load generator": cpu_seconds(os.getpid())}

    def cpu_spent_since_gate(self) -> dict[str, float]:
        now = self.cpu_reading()
        return {group: now[group] - self.cpu_at_gate[group] for group in now}

    def report(self, elapsed: float) -> None:
        done = len(self.result_s)
        print(f"clients {len(self.jobs)}, wall {elapsed:.1f} s, jobs/s {done / elapsed:.1f}")
        print(
            f"submit latency  p50 {statistics.median(self.submit_s) * 1000:.0f} ms  "
            f"p99 {percentile(self.submit_s, 0.99) * 1000:.0f} ms"
        )
        if self.result_s:
            print(
                f"time to result  p50 {statistics.median(self.result_s):.2f} s  "
                f"p99 {percentile(self.result_s, 0.99):.2f} s"
            )
        print(f"outcomes {dict(self.outcomes)}  HTTP statuses {dict(self.statuses)}")
        print(f"clients whose first submit was a 429: {self.refused_first} of {len(self.jobs)}")
        if self.cpu_in_submits:
            spent = ", ".join(f"{group} {s:.2f}" for group, s in self.cpu_in_submits.items())
            print(f"CPU s while the submits were answered: {spent}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tokens", action="store_true", help="one user per client")
    parser.add_argument("--symbols", type=int, default=0, help="symbols a job (0: 50 to 200)")
    args = parser.parse_args()
    symbols, _ = universe(200)
    tokens = make_tokens(args.clients) if args.tokens else [None] * args.clients
    rng = random.Random(7)
    jobs = [rng.sample(symbols, args.symbols or rng.randint(50, 200)) for _ in range(args.clients)]
    run = LoadRun(args.url, jobs, tokens)
    run.report(uvloop.run(run.run()))  # the generator's CPU is the service's loss: see http_client


if __name__ == "__main__":
    main()
