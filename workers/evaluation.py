"""Running an evaluation's chunk: one query per chunk for its symbols' whole history, then
every symbol-date through the same sandbox as ``/execute`` (each run its own window of the
series, sliced in the child, with the same CPU budget per run), each outcome written once.

The run at date ``d`` sees exactly what ``POST /execute`` with ``as_of = d`` and the same
``lookback`` sees: the symbol's last ``lookback`` bars on or before ``d``. Its outcomes are
the result cache's too (same code, params, window and data version), so an evaluation
repeated with other horizons or quantiles reruns nothing.

A chunk also works out its symbols' forward returns (workers/forward.py) from those bars and
the closes after the last rebalance date, and stores them for the job's figures.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date
from typing import Any

import redis
from sqlalchemy.orm import Session

from db.evaluation_data import load_closes
from db.market_data import ChunkData, optional_data_versions
from db.market_index import data_version
from db.session import session_scope
from logconfig import job_fields
from sandbox.executor import Limits, run_batch
from sandbox.runner import SymbolInput
from workers import result_cache
from workers.bars_cache import load_through
from workers.chunking import split_evenly
from workers.evaluation_finish import finish_evaluation
from workers.fairqueue import Share
from workers.forward import ForwardReturns
from workers.jobspec import JobSpec
from workers.jobstore import JobStore
from workers.keys import job_key
from workers.panel import PanelStore, field
from workers.reference import ReferenceData, load_reference
from workers.runtime import Runtime
from workers.status import JobStatus

log = logging.getLogger(__name__)

MAX_CHUNK_TRIES = 2
# About a second of runs a chunk: its fixed costs (a task hop, its bars' query, a child) are
# a few hundredths of that.
EVALUATION_CHUNK_RUNS = 5000
# A flush writes one result-cache hash per date its outcomes span (a chunk runs a symbol's
# dates one after another, so even a few hundred outcomes span all the dates): flushing
# twice a second rather than ten times cut the worker's Redis traffic by five, and progress
# moves as often as anyone polls it.
FLUSH_EVERY_OUTCOMES = 4096
FLUSH_EVERY_SECONDS = 0.5


def plan_evaluation_chunks(spec: JobSpec, rt: Runtime) -> list[list[str]]:
    """Chunks of whole symbols (each carries its series once and all dates), sized in
    symbol-dates: every worker process gets a few, and none runs much over a second, so that
    when the last chunks finish unevenly a process idles for part of a second, not for a
    quarter of the job (4 chunks of a 125,000-run evaluation on 2 processes left one idle
    1.4 s of 16). Their count is a multiple of the processes, so that the last round keeps
    every process busy (11 chunks on 2 processes left one idle for the 11th's 0.7 s)."""
    s = rt.settings
    processes = s.planned_processes
    dates = len(spec.evaluation["dates"]) if spec.evaluation else 1
    runs = len(spec.symbols) * dates
    per_run_floor = max(1, -(-s.min_chunk_size // dates))  # symbols: as for /execute, in runs
    count = max(processes * s.chunks_per_process, -(-runs // EVALUATION_CHUNK_RUNS))
    count = -(-count // processes) * processes
    return split_evenly(spec.symbols, min(count, -(-len(spec.symbols) // per_run_floor)))


def process_evaluation_chunk(
    store: JobStore,
    spec: JobSpec,
    chunk_no: int,
    symbols: list[str],
    *,
    rt: Runtime,
    share: Share | None = None,
) -> None:
    """Run a chunk's symbol-dates not yet recorded; the chunk that records the last one (or
    finds the job past its deadline) finishes the job with its figures.

    With ``share``, a chunk that has run ``CALC_EVALUATION_CHUNK_SECONDS`` while another
    user waits hands its unfinished symbols back (``workers.fairqueue``) and stops: an
    evaluation's long chunks do not hold a worker process from that user's work."""
    panel = PanelStore(store.r, ttl_seconds=store.ttl)
    ev = spec.evaluation or {}
    dates: list[str] = ev["dates"]
    total = len(spec.symbols) * len(dates)
    store.mark_running(spec.job_id)
    deadline = stop_at(store, spec)
    recorded = panel.recorded(
        spec.job_id, (field(i, s) for s in symbols for i in range(len(dates)))
    )
    todo = [s for s in symbols if any(field(i, s) not in recorded for i in range(len(dates)))]
    if todo and time.time() <= deadline:
        if store.count_chunk_try(spec.job_id, chunk_no) > MAX_CHUNK_TRIES:
            log.error("chunk abandoned after repeated worker loss", extra=_fields(spec))
            err = {"type": "WorkerLost", "message": "the worker running this run died repeatedly"}
            keys = (field(i, s) for s in todo for i in range(len(dates)))
            lost = ((k, {"value": None, "error": err}) for k in keys if k not in recorded)
            panel.record(spec.job_id, lost)
        else:
            _run(
                store,
                panel,
                spec,
                todo,
                recorded=recorded,
                deadline=deadline,
                rt=rt,
                chunk=chunk_no,
                share=share,
            )
    done = panel.done(spec.job_id)
    status = store.status(spec.job_id)
    if status is None or status.finished:
        return
    if done >= total:
        finish_evaluation(store, spec, JobStatus.COMPLETED, rt=rt)
    elif time.time() > deadline:
        finish_evaluation(store, spec, JobStatus.TIMED_OUT, rt=rt)


def stop_at(store: JobStore, spec: JobSpec) -> float:
    """When runs stop: the job's deadline less the time its figures may take, so that the
    job ends (with the figures of what finished) before the watchdog would end it."""
    deadline = store.deadline(spec.job_id) or (time.time() + spec.wall_seconds)
    return deadline - min(10.0, 0.1 * spec.wall_seconds)


def _run(
    store: JobStore,
    panel: PanelStore,
    spec: JobSpec,
    symbols: list[str],
    *,
    recorded: set[str],
    deadline: float,
    rt: Runtime,
    chunk: int,
    share: Share | None = None,
) -> None:
    ev = spec.evaluation or {}
    dates: list[str] = ev["dates"]
    started = time.perf_counter()
    with session_scope(rt.market_engine) as session:  # closed before any user code runs
        versions = _versions(symbols, session)
        data = load_through(  # a symbol's history read by an earlier evaluation is held
            rt.bars_cache,
            rt.settings.market_data_url_or_default,
            symbols,
            versions,
            session=session,
            lookback=ev["history_bars"],
            as_of=dates[-1],
            hold=len(spec.symbols) * ev["history_bars"] <= rt.settings.bars_cache_bars,
        )
        later = _closes_after(symbols, ev, session=session)
        ref_version = data_version(session=session) if spec.reference else None
        ref = load_reference(  # once per chunk, over its symbols' whole series
            spec.reference,
            list(data.bars.values()),
            session=session,
            client=store.r,
            database=rt.settings.market_data_url_or_default,
        )
    if later is not None:  # the symbols' forward returns, for the job's figures
        forward = ForwardReturns(ev["calendar"], dates, ev["horizons"])
        series = {s: (b.dates, b.close) for s, b in data.bars.items()}
        returns = forward.of_series(series, later, symbols)
        panel.save_forward(spec.job_id, {s: forward.pack(r) for s, r in returns.items()})
    keys = [_cache_keys(spec, d, versions, ref_version) for d in dates]
    hits = result_cache.fetch_many(store.r, keys)
    plan = _Plan(data, spec.lookback, dates, recorded, hits, ref)
    for symbol in symbols:
        plan.add(symbol)
    ready, runs, items = plan.ready, plan.runs, plan.items
    if ready:
        panel.record(spec.job_id, ((k, _panel_outcome(o, ev.get("field"))) for k, o in ready))
        cached = sum(1 for k, o in ready if not _is_missing_data(o))
        store.add_cache_hits(spec.job_id, cached)
    limits = Limits(
        cpu_seconds=rt.settings.symbol_cpu_seconds,
        memory_mb=rt.settings.child_memory_mb,
        stdout_bytes=rt.settings.stdout_bytes,
    )
    flush = _Flush(store, panel, spec, keys)
    last_flush = time.monotonic()
    consumed = 0
    rest: list[str] = []
    with closing(run_batch(spec.code, items, params=spec.params, limits=limits)) as outcomes:
        for (index, symbol), (_, outcome) in zip(runs, outcomes, strict=False):
            flush.buffer.append((index, symbol, outcome))
            consumed += 1
            now = time.monotonic()
            if len(flush.buffer) >= FLUSH_EVERY_OUTCOMES or now - last_flush >= FLUSH_EVERY_SECONDS:
                status = flush()
                last_flush = now
                if time.time() > deadline or status is None or status.finished:
                    break
                if consumed < len(runs) and _should_yield(share, started, rt):
                    # Whole symbols go back (their recorded dates are skipped when they run).
                    rest = list(dict.fromkeys(s for _, s in runs[consumed:]))
                    break
    flush()
    if rest and share is not None:
        share.give_back(rest)
    log.info(
        "evaluation chunk done",
        extra=_fields(
            spec,
            chunk=chunk,
            symbols=len(symbols),
            runs=len(runs),
            seconds=round(time.perf_counter() - started, 3),
        ),
    )


@dataclass
class _Plan:
    """A chunk's runs to make (one input per symbol-date, a symbol's inputs sharing its
    series) and the outcomes already known (cached, or no data in the window)."""

    data: ChunkData
    lookback: int
    dates: list[str]
    recorded: set[str]
    hits: list[dict[str, dict[str, Any]]]
    reference: ReferenceData | None = None
    ready: list[tuple[str, dict[str, Any]]] = dc_field(default_factory=list)
    runs: list[tuple[int, str]] = dc_field(default_factory=list)
    items: list[SymbolInput] = dc_field(default_factory=list)

    def add(self, symbol: str) -> None:
        bars = self.data.bars.get(symbol)
        info = self.data.info.get(symbol) or {"name": None, "sector": None, "industry": None}
        ref = None  # one mapping per symbol, aligned with its whole series, shared by its runs
        if self.reference is not None and bars is not None:
            ref = self.reference.aligned(bars.dates, info.get("sector"))
        for index, day in enumerate(self.dates):
            key = field(index, symbol)
            if key in self.recorded:
                continue
            hit = self.hits[index].get(symbol)
            if hit is not None:
                self.ready.append((key, hit))
                continue
            # The window POST /execute with as_of = day would load: the last bars up to it.
            stop = 0 if bars is None else bisect.bisect_right(bars.dates, day)
            if stop == 0:
                self.ready.append((key, _no_data(symbol, day, known=symbol in self.data.known)))
                continue
            start = max(0, stop - self.lookback)
            series = (bars.open, bars.high, bars.low, bars.close, bars.volume)
            self.items.append(SymbolInput(symbol, bars.dates, *series, info, start, stop, ref))
            self.runs.append((index, symbol))


def _no_data(symbol: str, day: str, *, known: bool) -> dict[str, Any]:
    if known:
        err = {"type": "NoData", "message": f"no price data for {symbol} up to {day}"}
    else:
        err = {"type": "UnknownSymbol", "message": f"no price data for {symbol}"}
    return {"value": None, "error": err}


def _is_missing_data(outcome: dict[str, Any]) -> bool:
    err = outcome.get("error") or {}
    return err.get("type") in ("NoData", "UnknownSymbol")


def _panel_outcome(outcome: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    """The run's value as the panel holds it, with the run's warnings (for the job's tally)."""
    value = _panel_value(outcome, wanted)
    if outcome.get("warnings"):
        value["warnings"] = outcome["warnings"]
    return value


def _panel_value(outcome: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    """The run's value as the panel holds it: ``result``, or ``result[field]`` for dicts."""
    if outcome.get("error"):
        return {"value": None, "error": outcome["error"]}
    value = outcome.get("value")
    if isinstance(value, dict):
        if wanted is None:
            message = "the script returned a dict: give field to say which key is the value"
            return {"value": None, "error": {"type": "InvalidResult", "message": message}}
        if wanted not in value:
            message = f"the script's result has no key {wanted!r} (field)"
            return {"value": None, "error": {"type": "InvalidResult", "message": message}}
        return {"value": value[wanted]}
    if wanted is not None and value is not None:
        message = f"field is {wanted!r} but the script returned a number, not a dict"
        return {"value": None, "error": {"type": "InvalidResult", "message": message}}
    return {"value": value}


class _Flush:
    """A chunk's outcomes so far, written with one pipeline per flush: the panel (and the
    job's tallies), the result cache, and the job's status read back in the same trip."""

    def __init__(
        self,
        store: JobStore,
        panel: PanelStore,
        spec: JobSpec,
        keys: list[result_cache.CacheKeys],
    ):
        self.store, self.panel, self.spec, self.keys = store, panel, spec, keys
        self.buffer: list[tuple[int, str, dict[str, Any]]] = []
        self.wanted = (spec.evaluation or {}).get("field")
        self.refreshed: set[str] = set()  # cache keys whose expiry this chunk has set

    def __call__(self) -> JobStatus | None:
        """Write the buffer and answer the job's status (None once it is gone)."""
        buffer, self.buffer = self.buffer, []
        try:
            raw = self._send(buffer)
        except redis.exceptions.NoScriptError:  # the server forgot it (restarted): load it
            self.panel.load_script()
            raw = self._send(buffer)
        return None if raw is None else JobStatus(raw.decode() if isinstance(raw, bytes) else raw)

    def _send(self, buffer: list[tuple[int, str, dict[str, Any]]]) -> Any:
        pipe = self.store.r.pipeline(transaction=False)
        job = self.spec.job_id
        if buffer:
            wanted = self.wanted
            self.panel.record_on(
                pipe, job, ((field(i, s), _panel_outcome(o, wanted)) for i, s, o in buffer)
            )
            by_date: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
            for index, symbol, outcome in buffer:
                by_date[index].append((symbol, outcome))
            batches = [(self.keys[i], pairs) for i, pairs in by_date.items()]
            result_cache.store_many(pipe, batches, refreshed=self.refreshed)
        pipe.hget(job_key(job), "status")
        return pipe.execute()[-1]


def _should_yield(share: Share | None, started: float, rt: Runtime) -> bool:
    """Whether this chunk has run its time and another user's work is waiting."""
    if share is None or time.perf_counter() - started < rt.settings.evaluation_chunk_seconds:
        return False
    return share.others_waiting()


def _closes_after(
    symbols: list[str], ev: dict[str, Any], *, session: Session
) -> list[tuple[str, str, float]] | None:
    """The closes from the last rebalance date to the last a forward return reaches (the
    chunk's bars end at that date; no run sees these), or None for a job planned without
    its calendar (its end then works the forward returns out from every close)."""
    if "calendar" not in ev:
        return None
    return load_closes(
        symbols,
        session=session,
        after=date.fromisoformat(ev["dates"][-1]),
        last=date.fromisoformat(ev["until"]),
    )


def _versions(symbols: list[str], session: Session) -> dict[str, int]:
    return optional_data_versions(symbols, session=session)


def _cache_keys(
    spec: JobSpec, day: str, versions: dict[str, int], ref_version: int | None
) -> result_cache.CacheKeys:
    return result_cache.cache_keys(
        code_sha256=spec.code_sha256,
        params=spec.params,
        lookback=spec.lookback,
        as_of=day,
        versions=versions,
        reference=spec.reference,
        reference_version=ref_version,
    )


def _fields(spec: JobSpec, **more: object) -> dict[str, object]:
    return job_fields(
        spec.job_id, script_id=spec.script_id, user=spec.owner, kind="evaluation", **more
    )
