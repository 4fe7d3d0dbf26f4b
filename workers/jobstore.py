"""The live job store in Redis: a job's record, outcomes and ending, and the scripts that
write them (key names in ``workers.keys``, reading a job back in ``workers.jobview``).

Progress is the length of the results hash, so a redelivered chunk cannot
count a symbol twice; exactly one caller wins the right to finish a job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

from workers import jobview, provenance
from workers.backlog import Backlog
from workers.deadlines import GRACE_SECONDS, Ending
from workers.jobspec import JobSpec
from workers.jobview import Job, outcome_json
from workers.keys import (
    ACTIVE_SETS,
    EVALUATION_PARTS,
    active_set,
    idempotency_key,
    job_key,
    job_part,
    owner_index,
)
from workers.redis_text import decoded, text
from workers.status import JobStatus
from workers.tallies import RECORD_WITH_TALLIES, record_args

MAX_JOBS_LISTED = 1000
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


# Flip queued -> running once, stamping the start and the wall-clock deadline.
_MARK_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  local wall = tonumber(redis.call('HGET', KEYS[1], 'wall_seconds'))
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1],
             'deadline', tostring(tonumber(ARGV[1]) + wall))
  return 1
end
return 0
"""


# Write a new job's record, list it under its owner and among the owner's active jobs, in
# one round trip. With a limit (ARGV[4] not empty) and the owner already at that many active
# jobs, write nothing and answer 0. Active members are scored by when they must have ended;
# older ones are stale (a job whose finish was lost) and are dropped first.
# KEYS: job, owner's index, owner's active set. ARGV: now, ttl, jobs listed, limit, ends by,
# job id, then the record's fields and values.
_CREATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
if ARGV[4] ~= '' and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


class TooManyActiveJobs(Exception):
    """The owner already has as many queued or running jobs as allowed."""


class JobStore:
    """Reads and writes jobs in Redis (the API and the workers share one per process)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_seconds: int,
        queue_timeout: float = 300.0,
        on_finish: Callable[[JobStore, Job], None] | None = None,
    ):
        self.r = client
        self.ttl = ttl_seconds
        self.queue_timeout = queue_timeout
        self.on_finish = on_finish
        self._mark_running = client.register_script(_MARK_RUNNING)
        self._create = client.register_script(_CREATE)
        self._record = client.register_script(RECORD_WITH_TALLIES)
        self.backlog = Backlog(client)

    @staticmethod
    def channel(job_id: str) -> str:
        """The pub/sub channel told when the job finishes (``workers.waiting``)."""
        return job_part(job_id, "done")

    # -- submitting -----------------------------------------------------------
    def claim_idempotency(self, owner: str | None, key: str, claim: dict[str, str]) -> dict | None:
        """Claim ``key`` for ``claim``; answer the earlier claim if the key was used before."""
        name = idempotency_key(owner, key)
        if self.r.set(name, json.dumps(claim), nx=True, ex=IDEMPOTENCY_TTL_SECONDS):
            return None
        raw = self.r.get(name)
        return None if raw is None else json.loads(raw)

    def release_idempotency(self, owner: str | None, key: str) -> None:
        self.r.delete(idempotency_key(owner, key))

    def create(
        self,
        spec: JobSpec,
        *,
        active_limit: int | None = None,
        backlog_limit: int | None = None,
        now: float | None = None,
    ) -> Job:
        """Write the job's record (status ``queued``); answer the job as just written (what
        ``load`` would read back, without the round trips).

        The job is counted among its owner's active jobs; with ``active_limit`` and the
        owner already at that many, nothing is written: ``TooManyActiveJobs``. It is counted
        into the service's backlog first (``workers.backlog``): past ``backlog_limit``,
        ``BacklogFull`` and nothing is written either.
        """
        now = time.time() if now is None else now
        fields = {
            **spec.to_fields(),
            "status": JobStatus.QUEUED.value,
            "created_at": now,
            "deadline": now + self.queue_timeout,
            "total": spec.total,
            "provenance": json.dumps(provenance.initial(spec), separators=(",", ":")),
        }
        ends_by = now + self.queue_timeout + spec.wall_seconds + GRACE_SECONDS
        limit = "" if active_limit is None else active_limit
        keys = [job_key(spec.job_id), owner_index(spec.owner), active_set(spec.owner)]
        args: list[Any] = [now, self.ttl, MAX_JOBS_LISTED, limit, ends_by, spec.job_id]
        for name, value in fields.items():
            args += (name, value)
        symbols = len(spec.symbols)  # an evaluation counts its symbols too
        self.backlog.admit(spec.job_id, symbols, limit=backlog_limit, ends_by=ends_by, now=now)
        if not self._create(keys=keys, args=args):
            self.backlog.release(spec.job_id)
            raise TooManyActiveJobs(f"at most {active_limit} jobs may be queued or running at once")
        return Job({k: str(v) for k, v in fields.items()}, {}, 0)

    def discard(self, job_id: str, owner: str | None) -> None:
        """Remove a job that could not be enqueued, so no half-made job is left behind."""
        pipe = self.r.pipeline()
        pipe.delete(job_key(job_id), job_part(job_id, "results"), job_part(job_id, "finish"))
        pipe.delete(job_part(job_id, "tries"), *(job_part(job_id, p) for p in EVALUATION_PARTS))
        pipe.zrem(owner_index(owner), job_id)
        pipe.zrem(active_set(owner), job_id)
        self.backlog.release(job_id, client=pipe)
        pipe.execute()

    def release_active(self, owner: str | None, job_id: str) -> None:
        self.r.zrem(active_set(owner), job_id)

    # -- the worker's side ----------------------------------------------------
    def spec(self, job_id: str) -> JobSpec | None:
        raw = self.r.hgetall(job_key(job_id))
        if not raw:
            return None
        return JobSpec.from_fields(decoded(raw))

    def fields(self, job_id: str) -> dict[str, str]:
        """The job's record as stored (empty when there is none)."""
        return decoded(self.r.hgetall(job_key(job_id)))

    def status(self, job_id: str) -> JobStatus | None:
        raw = self.r.hget(job_key(job_id), "status")
        return None if raw is None else JobStatus(text(raw))

    def created_at(self, job_id: str) -> float | None:
        raw = self.r.hget(job_key(job_id), "created_at")
        return None if raw is None else float(raw)

    def deadline(self, job_id: str) -> float | None:
        raw = self.r.hget(job_key(job_id), "deadline")
        return None if raw is None else float(raw)

    def mark_running(self, job_id: str, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return bool(self._mark_running(keys=[job_key(job_id)], args=[repr(now)]))

    def set_fields(self, job_id: str, **fields: Any) -> None:
        self.r.hset(job_key(job_id), mapping=fields)

    def complete_provenance(
        self, spec: JobSpec, *, as_of: str | None, data_version: int | None
    ) -> None:
        """Fill in the job's ``provenance`` with what it runs on (``workers.provenance``)."""
        raw = self.r.hget(job_key(spec.job_id), "provenance")
        completed = provenance.completed(
            None if raw is None else text(raw), spec, as_of=as_of, version=data_version
        )
        self.r.hset(job_key(spec.job_id), "provenance", completed)

    def recorded_symbols(self, job_id: str) -> set[str]:
        return {text(s) for s in self.r.hkeys(job_part(job_id, "results"))}

    def record_outcomes(self, job_id: str, outcomes: Iterable[tuple[str, dict]]) -> int:
        """Write each outcome once; answer how many symbols are now done."""
        args = record_args(self.ttl, ((s, outcome_json(o), o) for s, o in outcomes))
        return int(self._record(keys=[job_part(job_id, "results"), job_key(job_id)], args=args))

    def count_chunk_try(self, job_id: str, chunk_no: int, *, by: int = 1) -> int:
        """Count one more delivery of a chunk; answer how many there have been."""
        pipe = self.r.pipeline()
        pipe.hincrby(job_part(job_id, "tries"), str(chunk_no), by)
        pipe.expire(job_part(job_id, "tries"), self.ttl)
        return int(pipe.execute()[0])

    def add_cache_hits(self, job_id: str, count: int) -> None:
        if count:
            self.r.hincrby(job_key(job_id), "cache_hits", count)

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: dict[str, Any] | None = None,
        fill_error: dict[str, Any] | None = None,
        now: float | None = None,
        claim: bool = True,
    ) -> bool:
        """Finish the job once; the caller that wins gets True.

        Symbols without an outcome get ``fill_error`` (a timed-out or cancelled job's rest),
        so a finished job has every requested symbol. ``now`` is when it ended (the watchdog
        gives the moment it became overdue). ``claim=False`` is for the watchdog only: it
        finishes a job whose finisher died after claiming it.
        """
        now = time.time() if now is None else now
        if claim and not self.r.set(
            job_part(job_id, "finish"), repr(time.time()), nx=True, ex=self.ttl
        ):
            return False
        raw = self.r.hmget(job_key(job_id), ["symbols", "started_at", "owner", "kind"])
        if raw[0] is None:
            return False  # expired meanwhile
        # An evaluation's runs that did not finish are not filled in: its figures are of
        # what finished, and its panel says which runs those were.
        if fill_error is not None and text(raw[3] or b"execute") != "evaluation":
            missing = set(json.loads(raw[0])) - self.recorded_symbols(job_id)
            self.record_outcomes(
                job_id, ((s, {"value": None, "error": fill_error}) for s in missing)
            )
        started = float(raw[1]) if raw[1] else None
        fields: dict[str, Any] = {"status": status.value, "finished_at": now}
        if started is not None:
            fields["duration_ms"] = round((now - started) * 1000)
        if error is not None:
            fields["error"] = json.dumps(error)
        if self.on_finish is not None:
            # Record durably *before* the status flips: a client that sees the job finished
            # can at once read its audit row and its saved script's run.
            job = self.load_any(job_id)
            if job is not None:
                job.fields.update({k: str(v) for k, v in fields.items()})
                self.on_finish(self, job)
        pipe = self.r.pipeline()
        pipe.hset(job_key(job_id), mapping=fields)
        pipe.zrem(active_set(text(raw[2] or b"") or None), job_id)
        self.backlog.release(job_id, client=pipe)
        pipe.publish(self.channel(job_id), status.value)
        pipe.execute()
        return True

    def end(self, job_id: str, ending: Ending, **options: Any) -> bool:
        """``finish`` with an ``Ending`` (``workers.deadlines``)."""
        return self.finish(
            job_id, ending.status, error=ending.error, fill_error=ending.fill_error, **options
        )

    def finisher_died(self, job_id: str, *, grace: float) -> bool:
        """Someone claimed the right to finish this job over ``grace`` seconds ago and never did."""
        claimed = self.r.get(job_part(job_id, "finish"))
        return claimed is not None and time.time() - float(claimed) > grace

    def active_due(self, now: float) -> Iterator[tuple[str, str]]:
        """Every (active set, job id) whose job must have ended by ``now``."""
        for key in self.r.scan_iter(match=ACTIVE_SETS, count=500):
            for raw in self.r.zrangebyscore(key, "-inf", now):
                yield text(key), text(raw)

    def drop_active(self, set_key: str, job_id: str) -> None:
        """Drop a stale entry (a job finished or expired) from an owner's active set."""
        self.r.zrem(set_key, job_id)

    # -- the API's side (reads only, but for cancel) --------------------------
    def load(self, job_id: str, *, owner: str | None, with_results: bool = True) -> Job | None:
        """The job as its owner sees it (``workers.jobview.load``)."""
        return jobview.load(self.r, job_id, owner=owner, with_results=with_results)

    def load_any(self, job_id: str) -> Job | None:
        """The job as stored, whoever owns it (``workers.jobview.load_any``)."""
        return jobview.load_any(self.r, job_id)

    def list_for(self, owner: str | None, *, limit: int) -> list[Job]:
        """The owner's newest jobs, without their results (``workers.jobview.list_for``)."""
        return jobview.list_for(self.r, owner, limit=limit)

    def cancel(self, job_id: str, *, owner: str | None) -> Job | None:
        job = self.load(job_id, owner=owner, with_results=False)
        if job is None:
            return None
        if not job.status.finished:
            err = {"type": "Cancelled", "message": "the job was cancelled"}
            self.finish(job_id, JobStatus.CANCELLED, fill_error=err)
        return self.load(job_id, owner=owner)
