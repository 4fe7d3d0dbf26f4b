"""End-to-end and in-process timings of the benchmark scripts, printed as a table.

    make run                                  # in one terminal (or any running service)
    python -m bench.prepare_data              # once: 2,000+ symbols of real bars
    python -m bench.run_bench [--url http://127.0.0.1:8000] [--runs 5] [--sizes 200,2000]

For each job size and script: the end-to-end median and p99 (HTTP submit to finished
job, after two warm-up runs; each run's code differs by a comment, so the result cache
cannot answer), the median of a repeated identical job (served by the result cache), then
the same script with plain ``exec()`` in this process on the same bars, the sandbox in this
process, and the sandbox in children of this process's fork server (given the bars packed,
as a worker gives them). Then how the helpers script compares with the plain loops, and the
stages of a job, each timed on its own against the same bars: compile (uncached), load (one
chunk query, cold: the window cache is not used here), sandbox compute (forked children),
result write (outcomes to Redis), result read (the job as the API serializes it) and, with a
service, dispatch (a one-symbol job answered by the result cache, end to end: HTTP, the two
task hops, finishing). ``--stages-only`` prints that table alone (``--url ''``: without the
dispatch row, no service needed).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import redis

from bench.common import end_to_end, median_ms, packed_items, universe
from bench.workload import PURE_PYTHON, SCRIPTS
from db.market_data import load_chunk
from db.session import make_engine, session_scope
from sandbox.compiler import _compile_uncached
from sandbox.executor import Limits, run_batch, run_batch_in_process
from sandbox.helpers import HELPERS
from sandbox.runner import SymbolInput
from settings import Settings
from workers.jobspec import JobSpec
from workers.jobstore import JobStore


def plain_exec(code: str, items: list[SymbolInput]) -> float:
    compiled = compile(code, "<bench>", "exec")
    started = time.perf_counter()
    for item in items:
        g = {
            "__builtins__": __builtins__,
            **HELPERS,
            "params": {},
            "symbol": item.symbol,
            "dates": item.dates,
            "open": item.open,
            "high": item.high,
            "low": item.low,
            "close": item.close,
            "volume": item.volume,
            "info": dict(item.info),
        }
        exec(compiled, g)  # noqa: S102 - the baseline: our own benchmark script, unsandboxed
    return time.perf_counter() - started


def executor(run: Callable, code: str, items: list[SymbolInput]) -> float:
    started = time.perf_counter()
    outcomes = list(run(code, items, params={}, limits=Limits()))
    elapsed = time.perf_counter() - started
    assert all(o["error"] is None for _, o in outcomes), outcomes[:2]
    return elapsed


def timed(fn: Callable[[], float], runs: int, warm_up: int = 2) -> tuple[float, float]:
    for _ in range(warm_up):  # the worker's window cache, connections, idle sandbox children
        fn()
    samples = sorted(fn() for _ in range(runs))
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99


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
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="200,2000")
    parser.add_argument("--stages-only", action="store_true", help="the stages table alone")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    symbols, data = universe(max(sizes))
    if args.stages_only:
        print_stages(sizes, args.runs, symbols, data, url=args.url or None)
        return
    print(
        f"{'job':>24} | {'e2e p50':>8} {'e2e p99':>8} {'cached':>8} | {'exec()':>8} | "
        f"{'sandbox':>8} {'forked':>8} | {'e2e/exec':>8} {'sbx/exec':>8} {'fork/in':>8}"
    )
    sandbox_ms: dict[tuple[int, str], float] = {}
    for size in sizes:
        chosen = symbols[:size]
        items = [
            SymbolInput(s, b.dates, b.open, b.high, b.low, b.close, b.volume, data.info.get(s, {}))
            for s in chosen
            for b in [data.bars[s]]
        ]
        # The forked sandbox gets the series packed, as the worker's window cache hands them
        # out (unpacking them is then its child's work); the others get tuples.
        packed = packed_items(chosen, data)
        for name, code in SCRIPTS.items():
            e2e, e2e99 = timed(
                lambda code=code, chosen=chosen: end_to_end(args.url, code, chosen), args.runs
            )
            repeat, _ = timed(
                lambda code=code, chosen=chosen: end_to_end(args.url, code, chosen, fresh=False),
                args.runs,
            )
            base, _ = timed(lambda code=code, items=items: plain_exec(code, items), args.runs)
            sbx, _ = timed(
                lambda code=code, items=items: executor(run_batch_in_process, code, items),
                args.runs,
            )
            sandbox_ms[(size, name)] = sbx * 1000
            fork, _ = timed(
                lambda code=code, items=packed: executor(run_batch, code, items), args.runs
            )
            print(
                f"{f'{size} x {name}':>24} | {e2e * 1000:7.0f}ms {e2e99 * 1000:7.0f}ms "
                f"{repeat * 1000:7.0f}ms | "
                f"{base * 1000:6.0f}ms | {sbx * 1000:6.0f}ms {fork * 1000:6.0f}ms | "
                f"{e2e / base:7.1f}x {sbx / base:7.2f}x {fork / sbx:7.2f}x"
            )

    for size in sizes:
        ratio = sandbox_ms[(size, "helpers")] / sandbox_ms[(size, "pure-python")]
        print(f"{size} symbols: the helpers script takes {ratio:.2f}x the plain loops' time")

    print()
    print_stages(sizes, args.runs, symbols, data, url=args.url)


if __name__ == "__main__":
    main()
