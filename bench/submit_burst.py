"""A burst of submits at the API alone: its CPU per submit, per process, and the latencies.

    CALC_AUTH=required .venv/bin/honcho start web &     # the API without workers
    python -m bench.submit_burst --url http://127.0.0.1:8000 [--clients 200] [--rounds 3]

Each round makes ``--clients`` new tokens (in ``DATABASE_URL``, the service's database), opens
one connection per client, and sends every submit at once; the jobs stay queued (use a scratch
Redis database). It prints, per round, the CPU all gunicorn processes on this machine spent
per submit, how it split between them, and the submits' p50/p99. With no worker and no polls
competing, the CPU per submit moves far less from run to run than ``bench.load``'s p99 does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import uvloop

from bench.http_client import HttpConnection
from bench.load import API, make_tokens, percentile
from bench.proc import command_lines, cpu_seconds
from bench.run_bench import universe
from bench.workload import WITH_HELPERS


def gunicorn_pids() -> list[int]:
    return [pid for pid, command in command_lines() if b"gunicorn" in command]


def submit_request(token: str | None, symbols: list[str]) -> tuple[bytes, bytes]:
    """A submit's prepared head and body (with ``token``'s bearer header if given)."""
    body = json.dumps({"script": WITH_HELPERS, "symbols": symbols}).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return HttpConnection.head("POST", f"{API}/execute", headers, body), body


async def burst(url: str, requests: list[tuple[bytes, bytes]]) -> list[float]:
    """Send every request at once, one connection each; answer their latencies."""
    gate = asyncio.Event()

    async def client(head: bytes, body: bytes) -> float:
        http = HttpConnection(url)
        await gate.wait()
        started = time.perf_counter()
        try:
            response = await http.send(head, body)
        finally:
            await http.close()
        if response.status != 202:
            raise SystemExit(f"submit answered {response.status}: {response.body[:200]!r}")
        return time.perf_counter() - started

    tasks = [asyncio.create_task(client(head, body)) for head, body in requests]
    await asyncio.sleep(0.3)  # every client waits at the gate
    gate.set()
    return list(await asyncio.gather(*tasks))


def measure(url: str, requests: list[tuple[bytes, bytes]], pids: list[int]) -> str:
    """One burst: the CPU ``pids`` spent per request, by process, and p50/p99."""
    before = {pid: cpu_seconds(pid) for pid in pids}
    latencies = uvloop.run(burst(url, requests))
    spent = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
    per_process = ", ".join(f"{s:.2f}" for s in sorted(spent.values(), reverse=True) if s)
    return (
        f"CPU per request {sum(spent.values()) / len(requests) * 1000:.2f} ms (by process,"
        f" s: {per_process}); p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(latencies, 0.99) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    symbols, _ = universe(200)
    rng = random.Random(7)
    pids = gunicorn_pids()
    if not pids:
        raise SystemExit("no gunicorn process on this machine")
    for round_no in range(1, args.rounds + 1):
        jobs = [rng.sample(symbols, rng.randint(50, 200)) for _ in range(args.clients)]
        tokens = make_tokens(args.clients)
        requests = [submit_request(t, s) for t, s in zip(tokens, jobs, strict=True)]
        print(f"round {round_no}: API {measure(args.url, requests, pids)}")


if __name__ == "__main__":
    main()
