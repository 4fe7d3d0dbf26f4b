"""The stages of a job, each timed on its own against the same bars (medians of several runs).

    python -m bench.stages [--sizes 200,2000,5000] [--runs 5]

compile (uncached), load (one chunk query, cold: the window cache is not used here),
sandbox compute (forked children), result write (outcomes to Redis), result read (the job
as the API serializes it) and, given ``--url``, dispatch: a one-symbol job answered by the
result cache, end to end (HTTP, the two task hops, finishing). ``bench.run_bench`` prints
this table after its own.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import redis

from bench.common import end_to_end, universe
from bench.workload import PURE_PYTHON
from db.market_data import load_chunk
from db.session import make_engine, session_scope
from sandbox.compiler import _compile_uncached
from sandbox.executor import Limits, run_batch
from sandbox.runner import SymbolInput
from settings import Settings
from workers.jobspec import JobSpec
from workers.jobstore import JobStore


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def print_stages(
    sizes: list[int], runs: int, symbols: list[str], data, *, url: str | None = None
) -> None:
    """One table: a stage per row, a job size per column (medians of ``runs``)."""
    settings = Settings.from_env()
    engine = make_engine(settings.market_data_url_or_default)
    client = redis.Redis.from_url(settings.redis_url)
    store = JobStore(client, ttl_seconds=600)
    print(f"{'stage':>26} | " + " | ".join(f"{n:>8}" for n in sizes))
    rows: dict[str, list[float]] = {}
    for size in sizes:
        chosen = symbols[:size]
        items = [
            SymbolInput(s, b.dates, b.open, b.high, b.low, b.close, b.volume, {})
            for s in chosen
            for b in [data.bars[s]]
        ]
        outcomes = list(run_batch(PURE_PYTHON, items, params={}, limits=Limits()))
        written: list[str] = []

        def load(chosen=chosen) -> None:
            with session_scope(engine) as session:
                load_chunk(chosen, session=session, lookback=252, as_of=None)

        def write(chosen=chosen, outcomes=outcomes, written=written) -> None:
            spec = JobSpec(
                job_id=str(uuid.uuid4()),
                owner=None,
                code="",
                code_sha256="",
                symbols=chosen,
                params={},
                lookback=252,
                as_of=None,
                wall_seconds=10,
            )
            store.create(spec)
            store.record_outcomes(spec.job_id, outcomes)
            written.append(spec.job_id)

        write()
        figures = {
            "compile (uncached)": median_ms(lambda: _compile_uncached(PURE_PYTHON), runs),
            "load (one query, cold)": median_ms(load, runs),
            "sandbox compute (forked)": median_ms(
                lambda items=items: list(run_batch(PURE_PYTHON, items, params={}, limits=Limits())),
                runs,
            ),
            "result write": median_ms(write, runs),
            "result read": median_ms(
                lambda job_id=written[0]: store.load(job_id, owner=None).to_public(), runs
            ),
        }
        if url is not None:
            figures["dispatch (1 cached symbol)"] = median_ms(
                lambda one=chosen[:1]: end_to_end(url, PURE_PYTHON, one, fresh=False), runs
            )
        for name, value in figures.items():
            rows.setdefault(name, []).append(value)
    for name, values in rows.items():
        print(f"{name:>26} | " + " | ".join(f"{v:6.1f}ms" for v in values))
    engine.dispose()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200,2000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=None, help="a running service, for the dispatch row")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    symbols, data = universe(max(sizes))
    print_stages(sizes, args.runs, symbols, data, url=args.url)


if __name__ == "__main__":
    main()
