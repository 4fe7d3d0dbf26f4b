"""CPU time of one ``POST /execute`` in the API process, the figure a submit burst pays for.

    python -m bench.submit_cost [--submits 200] [--profile]

Runs the app in this process (Flask's test client: no network, no gunicorn) against the
Redis and database of REDIS_URL / DATABASE_URL, with auth on and one token, and prints the
median CPU milliseconds per submit over several batches; ``--profile`` adds the functions
that cost most. No worker is needed: jobs stay queued (the Redis database is the caller's:
use a scratch one). Limits are lifted so that every submit is accepted.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from collections.abc import Callable

from bench.load import make_tokens
from bench.run_bench import universe
from bench.workload import WITH_HELPERS


def prepared_submit() -> Callable[[], None]:
    """An app in this process and one authenticated submit to send to it, again and again."""
    os.environ.update(
        CALC_AUTH="required",
        CALC_RATE_LIMIT_EXECUTE="1000000 per second",
        CALC_RATE_LIMIT_DEFAULT="1000000 per second",
        CALC_MAX_ACTIVE_JOBS="1000000",
        CALC_LOG_LEVEL="WARNING",
    )
    from api import create_app

    client = create_app().test_client()
    headers = {"Authorization": f"Bearer {make_tokens(1)[0]}"}
    symbols, _ = universe(100)
    body = {"script": WITH_HELPERS, "symbols": symbols}

    def submit() -> None:
        response = client.post("/api/custom-calculations/execute", json=body, headers=headers)
        if response.status_code != 202:
            raise SystemExit(f"submit answered {response.status_code}: {response.get_data()!r}")

    return submit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submits", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    submit = prepared_submit()
    for _ in range(10):  # warm-up: connections, compiled code, the token's first use
        submit()
    batch = max(1, args.submits // 5)
    samples = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(batch):
            submit()
        samples.append((time.process_time() - started) / batch)
    print(f"CPU per submit: {statistics.median(samples) * 1000:.2f} ms (median of 5 x {batch})")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(batch):
            submit()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
