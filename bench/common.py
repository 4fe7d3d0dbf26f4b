"""What the benchmarks share, in one module (the tools import it and nothing of each other):
the universe of symbols with a year of bars, packed inputs, an end-to-end job over HTTP,
tokens made in the service's database, medians and percentiles, and the CPU processes used
so far, read from ``/proc`` (any process, not only our children)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator

import requests
from sqlalchemy import func, select

from db.market_data import ChunkData, load_chunk
from db.models import StockDailyData
from db.session import make_engine, session_scope
from db.tokens import create_token
from sandbox.runner import SymbolInput
from settings import Settings
from workers.bars_cache import Packed

API = "/api/custom-calculations"
LOOKBACK = 252


def universe(size: int) -> list[str]:
    engine = make_engine(Settings.from_env().market_data_url_or_default)
    with session_scope(engine) as session:
        c = StockDailyData.__table__.c
        rows = (
            session.execute(
                select(c.symbol)
                .group_by(c.symbol)
                .having(func.count() >= LOOKBACK)
                .order_by(c.symbol)
            )
            .scalars()
            .all()
        )
        if len(rows) < size:
            raise SystemExit(
                f"only {len(rows)} symbols have a year of bars; "
                "run python -m bench.prepare_data first"
            )
        data = load_chunk(rows[:size], session=session, lookback=LOOKBACK, as_of=None)
    engine.dispose()
    return list(data.bars)[:size], data


def packed_items(symbols: list[str], data: ChunkData) -> list[SymbolInput]:
    """Sandbox inputs with the series packed, as a worker's window cache hands them out."""
    return [
        SymbolInput(s, *dataclasses.astuple(Packed.of(data.bars[s])), data.info.get(s, {}))
        for s in symbols
    ]


_runs = itertools.count()


def end_to_end(
    url: str, code: str, symbols: list[str], *, fresh: bool = True, params: dict | None = None
) -> float:
    """HTTP submit to finished job. ``fresh`` adds a unique comment, so the result cache
    cannot answer (an analyst editing the script); without it, a repeat is served from it."""
    if fresh:
        code = f"{code}\n# run {next(_runs)} {time.time()}"
    started = time.perf_counter()
    response = requests.post(
        f"{url}/api/custom-calculations/execute",
        json={"script": code, "symbols": symbols, "params": params or {}, "wait": 30},
        timeout=60,
    )
    job = response.json()
    while job["status"] in ("queued", "running"):
        job = requests.get(f"{url}/api/custom-calculations/jobs/{job['job_id']}", timeout=30).json()
    elapsed = time.perf_counter() - started
    if job["status"] != "completed" or job["errors"]:
        raise SystemExit(
            f"benchmark job did not complete cleanly: {job['status']} "
            f"{list(job['errors'].items())[:3]}"
        )
    return elapsed


def make_tokens(count: int) -> list[str]:
    engine = make_engine(Settings.from_env().database_url)
    with session_scope(engine) as session:
        tokens = [create_token(f"load-{i}", session=session)[1] for i in range(count)]
    engine.dispose()
    return tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """The median of ``runs`` timed calls, in ms, after one untimed (warm-up) call."""
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, with_reaped: bool = False) -> float:
    """User plus system CPU of ``pid`` (0 when it is gone); ``with_reaped`` adds that of the
    children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11 : 15 if with_reaped else 13]) / _TICKS


# Who shares the machine in a benchmark, by what their command line holds (first match wins).
SERVICE_GROUPS = (
    ("api", (b"gunicorn",)),
    ("sandbox", (b"sandbox.zygote",)),  # the fork servers and the children they fork
    ("worker", (b"celery",)),
    ("redis", (b"redis-server",)),
    ("database", (b"postgres",)),
)


def cpu_by_group(
    groups: tuple[tuple[str, tuple[bytes, ...]], ...] = SERVICE_GROUPS,
) -> dict[str, float]:
    """CPU so far of every process in each group, with the children it has waited for: two
    readings apart give what each group spent between them, short-lived children included
    (a sandbox child alive at the first and reaped by the second counts in both readings,
    first in itself and then in its fork server)."""
    totals = dict.fromkeys((name for name, _ in groups), 0.0)
    for pid, command in command_lines():
        for name, markers in groups:
            if any(marker in command for marker in markers):
                totals[name] += cpu_seconds(pid, with_reaped=True)
                break
    return totals


def command_lines() -> Iterator[tuple[int, bytes]]:
    """Every process's id and command line (arguments NUL-separated); those gone meanwhile
    are left out."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                yield int(entry.name), cmdline.read()
        except OSError:
            continue
