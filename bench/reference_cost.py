"""What reference series cost a chunk: 500 symbols with ``@market``, ``@sector`` and two
symbols against the same chunk without (issue 22 item 1), ratio of medians of several runs.

    python -m bench.reference_cost [--symbols 500] [--runs 7]   (DATABASE_URL, REDIS_URL)

Each run is what ``workers.jobs`` does for a chunk: load its bars (one query), load its
reference (``workers.reference``: the index levels from the cache of this data version, the
two symbols' bars with one query), attach each symbol's aligned ``ref`` and run every symbol
in a sandbox child. The index levels are computed once before the runs (as the first job
after a load does; later jobs find them cached).
"""

from __future__ import annotations

import argparse
import statistics
import time

import redis

from bench.common import universe
from db.market_data import load_chunk
from db.session import make_engine, session_scope
from sandbox.executor import Limits, run_batch
from sandbox.runner import SymbolInput
from settings import Settings
from workers.reference import attach, cached_index_levels, load_reference

CODE = "result = close[-1] / close[-21] - 1"
CODE_WITH_REF = (
    "m = ref['@market']['close']\nresult = close[-1] / close[-21] - 1 - (m[-1] / m[-21] - 1)"
)


def one_chunk(symbols, reference, code, *, engine, client, database) -> float:
    """Seconds for one chunk of ``symbols``: load, reference, attach, run."""
    started = time.perf_counter()
    with session_scope(engine) as session:
        data = load_chunk(symbols, session=session, lookback=252, as_of=None)
        items = [
            SymbolInput(s, b.dates, b.open, b.high, b.low, b.close, b.volume, data.info.get(s, {}))
            for s, b in data.bars.items()
        ]
        ref = load_reference(reference, items, session=session, client=client, database=database)
    items = attach(items, ref)
    outcomes = list(run_batch(code, items, params={}, limits=Limits(cpu_seconds=5)))
    assert all(o["error"] is None for _, o in outcomes), outcomes[:1]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    settings = Settings.from_env()
    database = settings.market_data_url_or_default
    symbols, _ = universe(args.symbols)
    reference = ["@market", "@sector", symbols[0], symbols[1]]
    engine = make_engine(database)
    client = redis.Redis.from_url(settings.redis_url)
    with session_scope(engine) as session:
        cached_index_levels(session=session, client=client, database=database)
    common = {"engine": engine, "client": client, "database": database}
    plain, with_ref = [], []
    for _ in range(args.runs):  # interleaved, so both see the same load on a shared box
        plain.append(one_chunk(symbols, [], CODE, **common))
        with_ref.append(one_chunk(symbols, reference, CODE_WITH_REF, **common))
    a, b = statistics.median(plain), statistics.median(with_ref)
    print(f"symbols={len(symbols)} runs={args.runs} reference={','.join(reference)}")
    for label, runs, median in (("without", plain, a), ("with", with_ref, b)):
        ms = sorted(round(x * 1000) for x in runs)
        print(f"{label} reference: median {median * 1000:.0f} ms (runs, ms: {ms})")
    print(f"ratio of medians: {b / a:.3f}")
    engine.dispose()
    client.close()


if __name__ == "__main__":
    main()
