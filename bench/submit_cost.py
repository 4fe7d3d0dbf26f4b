"""What one submit costs the API, without the network or other processes in the way.

    CALC_AUTH=required REDIS_URL=redis://127.0.0.1:6379/9 \
        python -m bench.submit_cost --empty-redis-db [--submits 200] [--runs 5] [--symbols 50]

The app in this process (Flask's test client: the same views, limiter, auth, validation,
job record and Celery publish as under gunicorn) against the real Redis (``REDIS_URL``) and
database (``DATABASE_URL``, tokens made in it). Nothing consumes the published tasks, so
the Redis database ``REDIS_URL`` names is emptied before each run (no worker may use it:
``--empty-redis-db`` says you know). Prints the median CPU milliseconds a submit takes
and the Redis commands it sends (each a round trip, unless pipelined): the two figures
that set how many submits a second an API process answers on any host. ``bench.load``
measures the service as a whole under a burst.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from api import create_app
from bench.common import API, make_tokens, universe
from bench.workload import WITH_HELPERS

TOKENS = 20  # submits spread over this many users, as in a burst of analysts
MARK = "bench:submit_cost:mark"


def round_trips(r: redis.Redis, submit: Callable[[], None]) -> int:
    """The commands one submit sends Redis, seen by ``MONITOR`` (what scripts run inside
    the server not counted): each is a round trip, a network hop between machines, unless
    the code sends several on one pipeline."""
    seen: list[str] = []
    with r.monitor() as monitor:
        listening = threading.Thread(target=lambda: _listen(monitor, seen))
        listening.start()
        r.set(MARK, "start")
        submit()
        r.set(MARK, "end")
        listening.join(timeout=10)
    return len(seen)


def _listen(monitor: Any, seen: list[str]) -> None:
    started = False
    for command in monitor.listen():
        text = command["command"]
        if text.startswith(f"SET {MARK}"):
            if started:
                return
            started = True
        elif started and command.get("client_type") != "lua":
            seen.append(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--empty-redis-db", action="store_true", required=True)
    args = parser.parse_args()

    app = create_app()
    symbols, _ = universe(args.symbols)
    tokens = make_tokens(TOKENS)
    body = json.dumps({"script": WITH_HELPERS, "symbols": symbols}).encode()
    client = app.test_client()
    r = app.extensions["calc"].redis

    def submit(i: int) -> None:
        auth = {"Authorization": f"Bearer {tokens[i % TOKENS]}"}
        response = client.post(
            f"{API}/execute", data=body, headers=auth, content_type="application/json"
        )
        if response.status_code != 202:
            raise SystemExit(f"submit answered {response.status_code}: {response.get_data()!r}")

    per_submit_ms = []
    for _ in range(args.runs):
        r.flushdb()  # the queued jobs would reach the per-user and backlog limits
        for i in range(TOKENS):  # warm: pools filled, the compile cache holds the script
            submit(i)
        started = time.process_time()
        for i in range(args.submits):
            submit(i)
        per_submit_ms.append((time.process_time() - started) * 1000 / args.submits)
    trips = round_trips(r, lambda: submit(0))
    print(
        f"submit: {statistics.median(per_submit_ms):.2f} ms CPU (median of {args.runs} runs of "
        f"{args.submits}), {trips} Redis commands"
    )


if __name__ == "__main__":
    main()
