"""What the tasks do, as plain functions tests can call: start a job, run a chunk."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, date, datetime

from sqlalchemy.exc import SQLAlchemyError

from db.audit import AuditedJob, record_submitted
from db.evaluation_data import load_sectors
from db.market_data import ChunkData, latest_date, optional_data_versions
from db.market_index import data_version
from db.session import session_scope
from logconfig import job_fields
from sandbox.executor import Limits, run_batch
from sandbox.runner import SymbolInput
from workers import cross_section, result_cache
from workers.bars_cache import load_through
from workers.chunking import plan_chunks
from workers.deadlines import timed_out
from workers.evaluation import plan_evaluation_chunks, process_evaluation_chunk
from workers.fairqueue import Share
from workers.jobspec import JobSpec
from workers.jobstore import JobStore
from workers.reference import attach, load_reference
from workers.runtime import Runtime
from workers.status import JobStatus

log = logging.getLogger(__name__)

MAX_CHUNK_TRIES = 2  # deliveries of one chunk before its remaining symbols get an error
FLUSH_EVERY_OUTCOMES = 64
FLUSH_EVERY_SECONDS = 0.05

SendChunk = Callable[[str, int, list[str]], None]


def start_job(job_id: str, *, rt: Runtime, send_chunk: SendChunk) -> list[str]:
    """Fix the job's ``as_of``, enqueue all its chunks but the first, and answer the first
    (empty if there is nothing to run): the caller runs it at once, which saves every job
    a task round trip.

    The job becomes ``running`` when its first chunk starts, and its wall-clock limit counts
    from then: time spent waiting in a busy queue is bounded by the queue timeout instead,
    so a backlog does not time jobs out before they ran.
    """
    store = rt.store()
    spec = store.spec(job_id)
    if spec is None:
        log.warning("job to start is missing", extra=job_fields(job_id))
        return []
    status = store.status(job_id)
    if status is None or status.finished:
        log.info("job already finished; not started", extra=_fields(spec, status=str(status)))
        return []
    _record_start(store, spec, rt=rt)
    _fix_data(store, spec, rt=rt)
    if spec.kind == "evaluation":
        chunks = plan_evaluation_chunks(spec, rt)
        store.set_fields(job_id, chunks=len(chunks))
        for number, symbols in enumerate(chunks[1:], start=1):
            send_chunk(job_id, number, symbols)
        log.info("evaluation started", extra=_fields(spec, runs=spec.total, chunks=len(chunks)))
        return chunks[0] if chunks else []
    s = rt.settings
    chunks = plan_chunks(
        spec.symbols,
        processes=s.planned_processes,
        chunks_per_process=s.chunks_per_process,
        min_chunk_size=s.min_chunk_size,
    )
    store.set_fields(job_id, chunks=len(chunks))
    for number, symbols in enumerate(chunks[1:], start=1):
        send_chunk(job_id, number, symbols)
    log.info("job started", extra=_fields(spec, symbols=len(spec.symbols), chunks=len(chunks)))
    return chunks[0] if chunks else []


def _fix_data(store: JobStore, spec: JobSpec, *, rt: Runtime) -> None:
    """Fix what the job runs on and say so in its ``provenance``: the last trading date on or
    before its ``as_of`` (the newest without one; an evaluation's last rebalance date) and
    the market data's version. An ``as_of`` before every bar stays as asked (``NoData``)."""
    requested = date.fromisoformat(spec.as_of) if spec.as_of else None
    try:
        with session_scope(rt.market_engine) as session:
            version = data_version(session=session)
            if spec.kind == "evaluation":
                used = (spec.evaluation or {}).get("dates", [None])[-1]
            else:
                day = latest_date(session=session, on_or_before=requested)
                used = day.isoformat() if day else None
    except SQLAlchemyError:
        # The market data is away: the chunks meet the outage and report it as they do;
        # the provenance stays without a date and version.
        log.warning("market data unavailable at start", extra=_fields(spec))
        return
    if spec.kind != "evaluation" and (used is not None or requested is None):
        store.set_fields(spec.job_id, as_of=used or "")
    store.complete_provenance(spec, as_of=used, data_version=version)


def _record_start(store: JobStore, spec: JobSpec, *, rt: Runtime) -> None:
    """The job's audit row, as it starts. A database outage here is logged, not fatal: the
    row is written (or completed) again when the job finishes."""
    created = store.created_at(spec.job_id) or time.time()
    try:
        with session_scope(rt.app_engine) as session:
            audited = AuditedJob(
                job_id=spec.job_id,
                user_id=spec.owner,
                script_id=spec.script_id,
                code_sha256=spec.code_sha256,
                symbol_count=len(spec.symbols),
                created_at=datetime.fromtimestamp(created, tz=UTC),
                source=spec.source,
                kind=spec.kind,
            )
            record_submitted(audited, session=session)
    except SQLAlchemyError:
        log.warning("audit row not written at start", extra=_fields(spec))


def process_chunk(
    job_id: str, chunk_no: int, symbols: list[str], *, rt: Runtime, share: Share | None = None
) -> None:
    """Run one chunk: load its bars with one query, run the sandbox, record each outcome once.

    With ``share``, a chunk that has run its quantum while another user waits hands the rest
    of its symbols back (``workers.fairqueue``) and stops, so that user's work starts now."""
    store = rt.store()
    spec = store.spec(job_id)
    status = store.status(job_id)
    if spec is None or status is None or status.finished:
        log.info(
            "chunk dropped", extra={**job_fields(job_id), "chunk": chunk_no, "status": str(status)}
        )
        return
    if spec.kind == "evaluation":
        process_evaluation_chunk(store, spec, chunk_no, symbols, rt=rt, share=share)
        return
    store.mark_running(job_id)
    recorded = store.recorded_symbols(job_id)
    todo = [s for s in symbols if s not in recorded]
    if todo and store.count_chunk_try(job_id, chunk_no) > MAX_CHUNK_TRIES:
        # This chunk has already been delivered and lost its worker this many times:
        # running it again would only kill another worker.
        log.error(
            "chunk abandoned after repeated worker loss",
            extra=_fields(spec, chunk=chunk_no, tries=MAX_CHUNK_TRIES),
        )
        err = {"type": "WorkerLost", "message": "the worker running this symbol died repeatedly"}
        store.record_outcomes(job_id, ((s, {"value": None, "error": err}) for s in todo))
    elif todo:
        _run_symbols(store, spec, todo, rt=rt, chunk_no=chunk_no, share=share)
    _complete_if_done(store, spec, rt=rt)


def _run_symbols(
    store: JobStore,
    spec: JobSpec,
    todo: list[str],
    *,
    rt: Runtime,
    chunk_no: int,
    share: Share | None = None,
) -> None:
    deadline = store.deadline(spec.job_id) or (time.time() + spec.wall_seconds)
    if time.time() > deadline:  # queued past the job's deadline: not run late
        _time_out(store, spec, rt=rt)
        return
    as_of = date.fromisoformat(spec.as_of) if spec.as_of else None
    # The session is closed before any user code runs (STYLE 12).
    with session_scope(rt.market_engine) as session:
        versions = optional_data_versions(todo, session=session) if as_of else {}
        ref_version = data_version(session=session) if spec.reference else None
        keys = _cache_keys(spec, versions, ref_version)
        hits = result_cache.fetch(store.r, keys)
        misses = [s for s in todo if s not in hits]
        data = load_through(
            rt.bars_cache,
            rt.settings.market_data_url_or_default,
            misses,
            versions,
            session=session,
            lookback=spec.lookback,
            as_of=spec.as_of,
        )
        items, missing = _inputs(misses, data, as_of)
        # The reference series once for the whole chunk (workers.reference).
        ref = load_reference(
            spec.reference,
            items,
            session=session,
            client=store.r,
            database=rt.settings.market_data_url_or_default,
        )
    items = attach(items, ref)
    if hits:
        store.record_outcomes(spec.job_id, hits.items())
        store.add_cache_hits(spec.job_id, len(hits))
    if missing:
        store.record_outcomes(spec.job_id, missing)
    limits = Limits(
        cpu_seconds=rt.settings.symbol_cpu_seconds,
        memory_mb=rt.settings.child_memory_mb,
        stdout_bytes=rt.settings.stdout_bytes,
    )
    buffer: list[tuple[str, dict]] = []
    last_flush = time.monotonic()
    started = time.perf_counter()
    ran: set[str] = set()
    rest: list[str] = []
    # closing(): leaving the loop early (deadline, cancel) kills the sandbox child at once.
    with closing(run_batch(spec.code, items, params=spec.params, limits=limits)) as outcomes:
        for symbol, outcome in outcomes:
            buffer.append((symbol, outcome))
            ran.add(symbol)
            now = time.monotonic()
            if len(buffer) >= FLUSH_EVERY_OUTCOMES or now - last_flush >= FLUSH_EVERY_SECONDS:
                store.record_outcomes(spec.job_id, buffer)
                result_cache.store(store.r, keys, buffer)
                buffer.clear()
                last_flush = now
                if _should_stop(store, spec, deadline):
                    break
                if _should_yield(share, started, len(ran) < len(items)):
                    rest = [item.symbol for item in items if item.symbol not in ran]
                    break
    if buffer:
        store.record_outcomes(spec.job_id, buffer)
        result_cache.store(store.r, keys, buffer)
    if rest and share is not None:
        share.give_back(rest)
    log.info(
        "chunk done",
        extra=_fields(
            spec, chunk=chunk_no, symbols=len(todo), seconds=round(time.perf_counter() - started, 3)
        ),
    )
    if time.time() > deadline:
        _time_out(store, spec, rt=rt)


def _cache_keys(
    spec: JobSpec, versions: dict[str, int], ref_version: int | None
) -> result_cache.CacheKeys:
    return result_cache.cache_keys(
        code_sha256=spec.code_sha256,
        params=spec.params,
        lookback=spec.lookback,
        as_of=spec.as_of or "",
        versions=versions,
        reference=spec.reference,
        reference_version=ref_version,
    )


def _should_yield(share: Share | None, started: float, more: bool) -> bool:
    """Whether this chunk has had its quantum and another user's work is waiting."""
    if share is None or not more or time.perf_counter() - started < share.quantum_seconds:
        return False
    return share.others_waiting()


def _should_stop(store: JobStore, spec: JobSpec, deadline: float) -> bool:
    if time.time() > deadline:
        return True
    status = store.status(spec.job_id)
    return status is None or status.finished


def _time_out(store: JobStore, spec: JobSpec, *, rt: Runtime) -> None:
    _cross_section(store, spec, rt=rt)
    if store.end(spec.job_id, timed_out(spec.wall_seconds)):
        log.info("job timed out", extra=_fields(spec))


def _complete_if_done(store: JobStore, spec: JobSpec, *, rt: Runtime) -> None:
    done = store.record_outcomes(spec.job_id, ())
    if done < len(spec.symbols):
        return
    _cross_section(store, spec, rt=rt)
    if store.finish(spec.job_id, JobStatus.COMPLETED):
        log.info("job completed", extra=_fields(spec, symbols=done))


def _cross_section(store: JobStore, spec: JobSpec, *, rt: Runtime) -> None:
    """The job's ``cross_section`` (when asked), from what finished, before it ends."""
    if spec.cross_section is None or (store.status(spec.job_id) or JobStatus.QUEUED).finished:
        return
    job = store.load_any(spec.job_id)
    values = {s: json.loads(raw).get("value") for s, raw in (job.results if job else {}).items()}
    sectors: dict[str, str | None] = {}
    if spec.cross_section.get("neutralize") == "sector":
        with session_scope(rt.market_engine) as session:
            sectors = load_sectors(spec.symbols, session=session)
    transformed = cross_section.transform(
        values,
        how=spec.cross_section["transform"],
        neutralize=spec.cross_section.get("neutralize"),
        sectors=sectors,
    )
    store.set_fields(spec.job_id, cross_section=json.dumps(transformed))


def _fields(spec: JobSpec, **more: object) -> dict[str, object]:
    return job_fields(spec.job_id, script_id=spec.script_id, user=spec.owner, **more)


def _inputs(
    symbols: list[str], data: ChunkData, as_of: date | None
) -> tuple[list[SymbolInput], list[tuple[str, dict]]]:
    """Sandbox inputs for symbols with bars; ready outcomes for those without."""
    items: list[SymbolInput] = []
    missing: list[tuple[str, dict]] = []
    window = f" up to {as_of.isoformat()}" if as_of else ""
    for symbol in symbols:
        bars = data.bars.get(symbol)
        if bars is not None:
            info = data.info.get(symbol) or {"name": None, "sector": None, "industry": None}
            series = (bars.open, bars.high, bars.low, bars.close, bars.volume)
            items.append(SymbolInput(symbol, bars.dates, *series, info))
        elif symbol in data.known:
            err = {"type": "NoData", "message": f"no price data for {symbol}{window}"}
            missing.append((symbol, {"value": None, "error": err}))
        else:
            err = {"type": "UnknownSymbol", "message": f"no price data for {symbol}"}
            missing.append((symbol, {"value": None, "error": err}))
    return items, missing
