"""Celery tasks: thin wrappers that pass ids and plain JSON to ``workers.jobs``."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

import redis
from celery import Task
from sqlalchemy.exc import OperationalError

from logconfig import job_fields
from workers.celery_app import app, worker_runtime
from workers.fair_run import run_next as run_next_entry
from workers.fairqueue import RUN_NEXT, FairQueue, enqueue
from workers.jobs import process_chunk, start_job
from workers.jobspec import JobSpec
from workers.runtime import Runtime
from workers.schedule import enqueue_due
from workers.status import JobStatus
from workers.submit import RUN_JOB, submit_job
from workers.task_failure import job_fails_on_error
from workers.watchdog import sweep_overdue

log = logging.getLogger(__name__)

CHUNK_RETRIES = 3


def send_chunk(job_id: str, chunk_no: int, symbols: list[str]) -> None:
    shown = ", ".join(map(repr, symbols[:3])) + (", ..." if len(symbols) > 3 else "")
    run_chunk.apply_async(
        args=(job_id, chunk_no, symbols),
        task_id=f"{job_id}:{chunk_no}",
        # How Flower shows the arguments, given rather than left to Celery's saferepr, which
        # costs a few hundred microseconds a message on the hot paths; the symbols shortened.
        argsrepr=f"({job_id!r}, {chunk_no}, [{shown}] ({len(symbols)} symbols))",
        kwargsrepr="{}",
    )


@app.task(name=RUN_NEXT, bind=True)
def run_next(self) -> None:
    """A token: run the next entry of the fair queue (``workers.fairqueue``), whoever's it is."""
    run_next_entry(self.request.id, rt=worker_runtime(), celery=app, retry_chunk=send_chunk)


def send_fair_chunk(job_id: str, chunk_no: int, symbols: list[str]) -> None:
    rt = worker_runtime()
    owner = rt.store().fields(job_id).get("owner") or None
    entry = {"job": job_id, "chunk": chunk_no, "symbols": symbols}
    enqueue(app, FairQueue(rt.redis), owner, entry)


@app.task(name=RUN_JOB, bind=True)
def run_job(self, job_id: str) -> None:
    """A job submitted before the fair queue (``calc.run_next`` now starts jobs): split it
    into chunks, queue the others fairly and run the first here. If the first cannot load
    its data, it goes to the queue as a ``calc.run_chunk`` of its own, which retries with
    backoff."""
    rt = worker_runtime()
    with job_fails_on_error(rt.store(), job_id):
        first = start_job(job_id, rt=rt, send_chunk=send_fair_chunk)
        if not first:
            return
        try:
            process_chunk(job_id, 0, first, rt=rt)
        except (OperationalError, redis.ConnectionError):
            with contextlib.suppress(redis.RedisError):  # not a lost delivery: a handed-off chunk
                rt.store().count_chunk_try(job_id, 0, by=-1)
            send_chunk(job_id, 0, first)


@app.task(name="calc.enqueue_due_scripts")
def enqueue_due_scripts() -> list[str]:
    """Beat's minute tick: queue the saved scripts whose schedule is due."""
    rt = worker_runtime()

    def submit(spec: JobSpec) -> None:
        submit_job(spec, store=rt.store(), celery=app)

    return enqueue_due(datetime.now(UTC), rt=rt, submit=submit)


@app.task(name="calc.sweep_overdue_jobs")
def sweep_overdue_jobs() -> list[str]:
    """Beat's half-minute tick: end overdue jobs whose workers died, even if no one reads them."""
    return sweep_overdue(worker_runtime().store())


@app.task(name="calc.run_chunk", bind=True, max_retries=CHUNK_RETRIES)
def run_chunk(self, job_id: str, chunk_no: int, symbols: list[str]) -> None:
    """One chunk of a job: load its bars, run them in the sandbox, record each outcome once."""
    rt = worker_runtime()
    with job_fails_on_error(rt.store(), job_id):
        _run_chunk_or_retry(self, job_id, chunk_no, symbols, rt=rt)


def _run_chunk_or_retry(
    task: Task, job_id: str, chunk_no: int, symbols: list[str], *, rt: Runtime
) -> None:
    """Run the chunk; an outage is retried with backoff, then fails the job ``DataUnavailable``."""
    try:
        process_chunk(job_id, chunk_no, symbols, rt=rt)
    except (OperationalError, redis.ConnectionError) as exc:
        if task.request.retries >= CHUNK_RETRIES:
            log.error(
                "chunk failed: market data unavailable",
                extra=job_fields(job_id, chunk=chunk_no, error=type(exc).__name__),
            )
            err = {"type": "DataUnavailable", "message": "market data could not be loaded"}
            rt.store().finish(job_id, JobStatus.FAILED, error=err, fill_error=err)
            return
        log.warning(
            "chunk retried", extra=job_fields(job_id, chunk=chunk_no, error=type(exc).__name__)
        )
        with contextlib.suppress(redis.RedisError):  # a retry we chose is not a lost delivery
            rt.store().count_chunk_try(job_id, chunk_no, by=-1)
        raise task.retry(exc=exc, countdown=0.5 * 2**task.request.retries) from exc
