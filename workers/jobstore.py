"""The live job store in Redis: the one module that knows its key names and its scripts.

Keys (all expire, a job's with the job, 24 hours by default):

- ``calc:job:{id}``          hash: the spec (code, symbols, params, ...) and the status fields
- ``calc:job:{id}:results``  hash: symbol -> outcome JSON, each written once (``HSETNX``)
- ``calc:job:{id}:finish``   string: set once (``SET NX``) by whoever finishes the job
- ``calc:job:{id}:tries``    hash: chunk number -> deliveries (a chunk that kills workers stops)
- ``calc:job:{id}:done``     pub/sub channel: a message when the job finishes
- ``calc:jobs:{owner}``      sorted set: the owner's job ids by creation time
- ``calc:active:{owner}``    sorted set: the owner's queued or running jobs, by when they must
  have ended (the per-owner limit, and how the watchdog finds jobs whose workers died)
- ``calc:idem:{owner}:{sha256 of the key}``  a submit's Idempotency-Key claim
- ``calc:sched:{script}:{zone}:{due}``  a scheduled run's claim; ``calc:rc:{sha256}`` the result
  cache; ``calc:index:{sha256}:{version}`` a reference index's levels
  (``workers.reference``); ``calc:metrics:*`` the job counters (``workers.metrics``)

Progress is the length of the results hash, so a redelivered chunk cannot
count a symbol twice; exactly one caller wins the right to finish a job.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

from workers import provenance
from workers.backlog import Backlog
from workers.deadlines import GRACE_SECONDS, Ending
from workers.jobspec import JobSpec
from workers.jobview import (
    MAX_DISTINCT_WARNINGS,
    TALLY_ERROR,
    TALLY_OTHER_WARNINGS,
    TALLY_WARNING,
    TALLY_WARNINGS_DISTINCT,
    Job,
    outcome_json,
)
from workers.status import JobStatus

PREFIX = "calc"
MAX_JOBS_LISTED = 1000
# An evaluation's keys beside its job (workers/panel.py): panel, CSV rows, figures.
EVALUATION_PARTS = ("panel", "rows", "evaluation", "evaluation:claim")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


def owner_key(owner: str | None) -> str:
    return owner or ""


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def idempotency_key(owner: str | None, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}:idem:{owner_key(owner)}:{digest}"


def schedule_claim_key(script_id: int, due: str) -> str:
    return f"{PREFIX}:sched:{script_id}:{due}"


def result_cache_key(digest: str) -> str:
    return f"{PREFIX}:rc:{digest}"


def reference_index_key(digest: str, version: int) -> str:
    return f"{PREFIX}:index:{digest}:{version}"


def workers_key() -> str:
    """Sorted set: worker node -> time of its last heartbeat (``workers/health.py``)."""
    return f"{PREFIX}:workers"


def sandbox_key() -> str:
    """Hash: worker node -> the sandbox confinement its pool processes got (health.py)."""
    return f"{PREFIX}:sandbox"


def metrics_key(name: str) -> str:
    return f"{PREFIX}:metrics:{name}"


def _owner_index(owner: str | None) -> str:
    return f"{PREFIX}:jobs:{owner_key(owner)}"


def _active(owner: str | None) -> str:
    return f"{PREFIX}:active:{owner_key(owner)}"


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


# The job's tallies (API.md's ``errors_by_type`` and ``warnings``), counted in the job's own
# hash as each outcome is first written, in the same script: a redelivered chunk, whose
# outcomes are already there, counts nothing twice. Fields: ``tally:e:{type}`` and
# ``tally:w:{message}`` (a count of symbols, or an evaluation's runs), ``tally:wn`` the
# distinct warnings so far; past ``MAX_DISTINCT_WARNINGS`` the rest count in ``tally:w*``.
# An evaluation's panel also gives its figures' claim (KEYS[3]): once the figures are being
# made, or the job has ended (cancelled), it takes no more runs, so that its progress, figures
# and panel agree on what finished.
# KEYS: the outcomes' hash, the job[, the figures' claim]. ARGV: ttl, then per outcome its
# field, its JSON, its error type ('' without) and its warnings joined by newlines ('').
RECORD_WITH_TALLIES = f"""
if KEYS[3] then
  local status = redis.call('HGET', KEYS[2], 'status')
  if redis.call('EXISTS', KEYS[3]) == 1
     or (status and status ~= 'queued' and status ~= 'running') then
    return redis.call('HLEN', KEYS[1])
  end
end
local live = redis.call('EXISTS', KEYS[2]) == 1
for i = 2, #ARGV, 4 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 and live then
    if ARGV[i + 2] ~= '' then
      redis.call('HINCRBY', KEYS[2], '{TALLY_ERROR}' .. ARGV[i + 2], 1)
    end
    for w in string.gmatch(ARGV[i + 3], '[^\\n]+') do
      local f = '{TALLY_WARNING}' .. w
      if redis.call('HEXISTS', KEYS[2], f) == 1 then
        redis.call('HINCRBY', KEYS[2], f, 1)
      elseif redis.call('HINCRBY', KEYS[2], '{TALLY_WARNINGS_DISTINCT}', 0)
             < {MAX_DISTINCT_WARNINGS} then
        redis.call('HINCRBY', KEYS[2], f, 1)
        redis.call('HINCRBY', KEYS[2], '{TALLY_WARNINGS_DISTINCT}', 1)
      else
        redis.call('HINCRBY', KEYS[2], '{TALLY_OTHER_WARNINGS}', 1)
      end
    end
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return redis.call('HLEN', KEYS[1])
"""


def tally_args(key: str, stored: str | bytes, outcome: dict[str, Any]) -> tuple[Any, ...]:
    """One outcome's arguments to ``RECORD_WITH_TALLIES``: its field, its stored JSON, its
    error's type and its warnings (one line each)."""
    err = outcome.get("error")
    warnings = outcome.get("warnings") or ()
    lines = "\n".join(w.replace("\n", " ") for w in warnings if isinstance(w, str))
    return key, stored, err.get("type", "") if err else "", lines


class TooManyActiveJobs(Exception):
    """The owner already has as many queued or running jobs as allowed."""


class JobStore:
    """Reads and writes jobs in Redis; the only code that knows the key layout."""

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

    key = staticmethod(job_key)

    @staticmethod
    def channel(job_id: str) -> str:
        return f"{job_key(job_id)}:done"

    @staticmethod
    def _results(job_id: str) -> str:
        return f"{job_key(job_id)}:results"

    @staticmethod
    def _finish(job_id: str) -> str:
        return f"{job_key(job_id)}:finish"

    @staticmethod
    def _tries(job_id: str) -> str:
        return f"{job_key(job_id)}:tries"

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
        keys = [job_key(spec.job_id), _owner_index(spec.owner), _active(spec.owner)]
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
        pipe.delete(job_key(job_id), self._results(job_id), self._finish(job_id))
        pipe.delete(self._tries(job_id), *(f"{job_key(job_id)}:{p}" for p in EVALUATION_PARTS))
        pipe.zrem(_owner_index(owner), job_id)
        pipe.zrem(_active(owner), job_id)
        self.backlog.release(job_id, client=pipe)
        pipe.execute()

    def release_active(self, owner: str | None, job_id: str) -> None:
        self.r.zrem(_active(owner), job_id)

    # -- the worker's side ----------------------------------------------------
    def spec(self, job_id: str) -> JobSpec | None:
        raw = self.r.hgetall(job_key(job_id))
        if not raw:
            return None
        return JobSpec.from_fields(_decode(raw))

    def fields(self, job_id: str) -> dict[str, str]:
        """The job's record as stored (empty when there is none)."""
        return _decode(self.r.hgetall(job_key(job_id)))

    def status(self, job_id: str) -> JobStatus | None:
        raw = self.r.hget(job_key(job_id), "status")
        return None if raw is None else JobStatus(_text(raw))

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
        text = provenance.completed(
            None if raw is None else _text(raw), spec, as_of=as_of, version=data_version
        )
        self.r.hset(job_key(spec.job_id), "provenance", text)

    def recorded_symbols(self, job_id: str) -> set[str]:
        return {_text(s) for s in self.r.hkeys(self._results(job_id))}

    def record_outcomes(self, job_id: str, outcomes: Iterable[tuple[str, dict]]) -> int:
        """Write each outcome once; answer how many symbols are now done."""
        args: list[Any] = [self.ttl]
        for symbol, outcome in outcomes:
            args.extend(tally_args(symbol, outcome_json(outcome), outcome))
        return int(self._record(keys=[self._results(job_id), job_key(job_id)], args=args))

    def count_chunk_try(self, job_id: str, chunk_no: int, *, by: int = 1) -> int:
        """Count one more delivery of a chunk; answer how many there have been."""
        pipe = self.r.pipeline()
        pipe.hincrby(self._tries(job_id), str(chunk_no), by)
        pipe.expire(self._tries(job_id), self.ttl)
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
        if claim and not self.r.set(self._finish(job_id), repr(time.time()), nx=True, ex=self.ttl):
            return False
        raw = self.r.hmget(job_key(job_id), ["symbols", "started_at", "owner", "kind"])
        if raw[0] is None:
            return False  # expired meanwhile
        # An evaluation's runs that did not finish are not filled in: its figures are of
        # what finished, and its panel says which runs those were.
        if fill_error is not None and _text(raw[3] or b"execute") != "evaluation":
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
        pipe.zrem(_active(_text(raw[2] or b"") or None), job_id)
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
        claimed = self.r.get(self._finish(job_id))
        return claimed is not None and time.time() - float(claimed) > grace

    def active_due(self, now: float) -> Iterator[tuple[str, str]]:
        """Every (active set, job id) whose job must have ended by ``now``."""
        for key in self.r.scan_iter(match=f"{PREFIX}:active:*", count=500):
            for raw in self.r.zrangebyscore(key, "-inf", now):
                yield _text(key), _text(raw)

    def drop_active(self, active_set: str, job_id: str) -> None:
        self.r.zrem(active_set, job_id)

    # -- the API's side (reads only, but for cancel) --------------------------
    def load(self, job_id: str, *, owner: str | None, with_results: bool = True) -> Job | None:
        """The job as its owner sees it, or None (unknown, expired, or someone else's). Only
        reads: a job whose workers died is ended by the watchdog (``workers.watchdog``)."""
        raw = self.r.hgetall(job_key(job_id))
        if not raw:
            return None
        h = _decode(raw)
        if h.get("owner", "") != owner_key(owner):
            return None
        if h.get("kind") == "evaluation":
            finished = JobStatus(h["status"]).finished
            return self._load_evaluation(job_id, h, with_figures=with_results and finished)
        if with_results:
            results = _decode(self.r.hgetall(self._results(job_id)))
            return Job(h, results, len(results))
        return Job(h, None, int(self.r.hlen(self._results(job_id))))

    def load_any(self, job_id: str) -> Job | None:
        """The job as stored, whoever owns it (the workers' bookkeeping, never a response)."""
        raw = self.r.hgetall(job_key(job_id))
        if not raw:
            return None
        h = _decode(raw)
        if h.get("kind") == "evaluation":
            return self._load_evaluation(job_id, h, with_figures=True)
        results = _decode(self.r.hgetall(self._results(job_id)))
        return Job(h, results, len(results))

    def _load_evaluation(self, job_id: str, h: dict[str, str], *, with_figures: bool) -> Job:
        """An evaluation: progress over its panel, and once finished its figures."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hlen(f"{job_key(job_id)}:panel")
        pipe.get(f"{job_key(job_id)}:evaluation")
        done, evaluation = pipe.execute()
        if with_figures:
            h = {**h, "evaluation": _text(evaluation) if evaluation is not None else "null"}
        return Job(h, None, int(done))

    def list_for(self, owner: str | None, *, limit: int) -> list[Job]:
        ids = self.r.zrevrange(_owner_index(owner), 0, max(0, limit - 1))
        jobs = []
        for raw_id in ids:
            job = self.load(_text(raw_id), owner=owner, with_results=False)
            if job is not None:
                jobs.append(job)
        return jobs

    def cancel(self, job_id: str, *, owner: str | None) -> Job | None:
        job = self.load(job_id, owner=owner, with_results=False)
        if job is None:
            return None
        if not job.status.finished:
            err = {"type": "Cancelled", "message": "the job was cancelled"}
            self.finish(job_id, JobStatus.CANCELLED, fill_error=err)
        return self.load(job_id, owner=owner)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(raw: dict) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}
