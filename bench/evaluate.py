"""An evaluation end to end through HTTP against the same runs with plain ``exec()``.

    make run                       # or any running service with the market data loaded
    python -m bench.prepare_data --copies 1 --since 2014-06-01   # 900 symbols, full windows
    python -m bench.evaluate [--url http://127.0.0.1:8000] [--symbols 500] [--runs 3]

Two evaluations of bench/workload.py's 30-line pure-Python script: weekly (every 5th
trading day) over two years, and daily over one. Each is timed from the HTTP submit to the
finished job (figures included; each run's code differs by a comment, so the result cache
cannot answer), then the same script runs with plain ``exec()`` in this one process on the
same windows (each symbol-date's last ``lookback`` bars as tuples, as a run sees them). The
ratio is end-to-end time over plain ``exec()`` time (the target is at most 0.8 on two cores:
both busy, the sandbox nearly free). The first run of each period is shown apart: the API and
the workers do not hold its calendar and histories yet (workers/calendar_cache.py,
workers/bars_cache.py); the later runs, like an analyst's next script over the same universe,
find them held. Restart the service before a run to see the first one cold.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import time
from datetime import date

import requests
from sqlalchemy import func, select

from bench.workload import PURE_PYTHON
from db.evaluation_data import trading_calendar
from db.market_data import load_chunk
from db.models import StockDailyData
from db.session import make_engine, session_scope
from sandbox.helpers import HELPERS
from settings import Settings
from workers.evaluation_plan import plan_dates

LOOKBACK = 252
RUNS = {
    "weekly, 2 years": ("2016-01-04", "2017-12-29", 5),
    "daily, 1 year": ("2017-01-03", "2017-12-29", 1),
}


def symbols_with_data(limit: int) -> list[str]:
    """The first ``limit`` symbols (by name) with at least a year of bars."""
    engine = make_engine(Settings.from_env().market_data_url_or_default)
    try:
        with session_scope(engine) as session:
            c = StockDailyData.__table__.c
            query = (
                select(c.symbol)
                .group_by(c.symbol)
                .having(func.count() >= LOOKBACK)
                .order_by(c.symbol)
                .limit(limit)
            )
            return list(session.scalars(query))
    finally:
        engine.dispose()


def end_to_end(
    url: str, symbols: list[str], start: str, end: str, every: int
) -> tuple[float, dict]:
    code = f"{PURE_PYTHON}\n# run {time.time()}"
    body = {
        "script": code,
        "symbols": symbols,
        "start": start,
        "end": end,
        "every": every,
        "lookback": LOOKBACK,
        "field": "gap",
        "horizons": [1, 5, 21],
        "timeout": 600,
        "wait": 30,  # API.md's long poll: the answer comes as the job finishes
    }
    started = time.perf_counter()
    response = requests.post(f"{url}/api/custom-calculations/evaluate", json=body, timeout=60)
    job = response.json()
    if response.status_code >= 400:
        raise SystemExit(f"evaluation refused: {job}")
    while job["status"] in ("queued", "running"):  # past the wait: poll as a client would
        time.sleep(0.1)
        job = requests.get(f"{url}/api/custom-calculations/jobs/{job['job_id']}", timeout=30).json()
    elapsed = time.perf_counter() - started
    if job["status"] != "completed":
        raise SystemExit(f"evaluation did not complete: {job['status']} {job.get('error')}")
    return elapsed, job


def windows(symbols: list[str], start: str, end: str, every: int):
    """Every symbol-date's window as a run sees it: (symbol, dates, o, h, l, c, v, info)."""
    engine = make_engine(Settings.from_env().market_data_url_or_default)
    try:
        with session_scope(engine) as session:
            calendar = trading_calendar(symbols, session=session)
            plan = plan_dates(
                calendar,
                start=date.fromisoformat(start),
                end=date.fromisoformat(end),
                every=every,
                lookback=LOOKBACK,
                horizons=[21],
                symbols=len(symbols),
            )
            data = load_chunk(
                symbols,
                session=session,
                lookback=plan.history_bars,
                as_of=date.fromisoformat(plan.dates[-1]),
            )
    finally:
        engine.dispose()
    runs = []
    for symbol in symbols:
        bars = data.bars.get(symbol)
        if bars is None:
            continue
        series = [tuple(x) for x in (bars.open, bars.high, bars.low, bars.close, bars.volume)]
        for day in plan.dates:
            stop = bisect.bisect_right(bars.dates, day)
            if stop:
                runs.append(
                    (
                        symbol,
                        bars.dates,
                        series,
                        max(0, stop - LOOKBACK),
                        stop,
                        data.info.get(symbol, {}),
                    )
                )
    return runs


def plain_exec(runs) -> float:
    """The same runs with plain ``exec()`` in this process: each window sliced into tuples,
    a fresh globals dict per run (no sandbox, no child, no figures)."""
    compiled = compile(PURE_PYTHON, "<bench>", "exec")
    started = time.perf_counter()
    for symbol, dates, series, lo, hi, info in runs:
        o, h, low, c, v = series
        g = {
            "__builtins__": __builtins__,
            **HELPERS,
            "params": {},
            "symbol": symbol,
            "dates": dates[lo:hi],
            "open": o[lo:hi],
            "high": h[lo:hi],
            "low": low[lo:hi],
            "close": c[lo:hi],
            "volume": v[lo:hi],
            "info": dict(info),
        }
        try:  # a short window's IndexError is that run's error, as in the sandbox
            exec(compiled, g)  # noqa: S102 - the baseline: our own benchmark script, unsandboxed
        except Exception:  # noqa: S112 - the baseline records nothing either
            continue
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    symbols = symbols_with_data(args.symbols)
    print(f"{len(symbols)} symbols, medians of {args.runs} runs, load {_load()} before")
    head = ("evaluation", "symbol-dates", "HTTP end to end", "plain exec()", "ratio", "first run")
    print(f"{head[0]:<18} {head[1]:>12} {head[2]:>16} {head[3]:>13} {head[4]:>6} {head[5]:>16}")
    for name, (start, end, every) in RUNS.items():
        runs = windows(symbols, start, end, every)
        http, plain = [], []
        job = {}
        for _ in range(args.runs):  # interleaved, the box being shared: medians of each
            elapsed, job = end_to_end(args.url, symbols, start, end, every)
            http.append(elapsed)
            plain.append(plain_exec(runs))
        h, p = statistics.median(http), statistics.median(plain)
        first = f"{http[0]:.2f}s {http[0] / p:.2f}"
        print(
            f"{name:<18} {job['evaluation']['runs']:>12} {h:>15.2f}s {p:>12.2f}s {h / p:>6.2f}"
            f" {first:>16}"
        )
    print(f"load {_load()} after (1, 5, 15 minutes; 2 cores)")


def _load() -> str:
    """The machine's load averages: the figures are only as quiet as the box was."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    main()
