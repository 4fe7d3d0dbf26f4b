"""The live job store in Redis: a job's spec, status and per-symbol outcomes.

Keys (all expire with the job, 24 hours by default):

- ``calc:job:{id}``          hash: the spec (code, symbols, params, ...) and the status fields
- ``calc:job:{id}:results``  hash: symbol -> outcome JSON, each written once (``HSETNX``)
- ``calc:job:{id}:finish``   string: set once (``SET NX``) by whoever finishes the job
- ``calc:job:{id}:done``     pub/sub channel: a message when the job finishes
- ``calc:jobs:{owner}``      sorted set: the owner's job ids by creation time

Progress is the length of the results hash, so a redelivered chunk cannot
count a symbol twice; exactly one caller wins the right to finish a job.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from workers.status import JobStatus

PREFIX = "calc"
WATCHDOG_GRACE_SECONDS = 2.0  # past its deadline plus this, a read reports the job timed out
FINISHER_GRACE_SECONDS = 30.0  # a claim to finish a job older than this was abandoned
MAX_JOBS_LISTED = 1000
# An evaluation's keys beside its job (workers/panel.py): panel, CSV rows, figures.
EVALUATION_PARTS = ("panel", "rows", "evaluation", "evaluation:claim")


def new_job_id() -> str:
    return str(uuid.uuid4())


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a ``Z`` and milliseconds."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def owner_key(owner: str | None) -> str:
    return owner or ""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a worker needs to run a job, fixed when the job is queued."""

    job_id: str
    owner: str | None
    code: str
    code_sha256: str
    symbols: list[str]
    params: dict[str, Any]
    lookback: int
    as_of: str | None
    wall_seconds: float
    script_id: int | None = None
    source: str = "api"
    kind: str = "execute"  # or "evaluation" (API.md), whose spec is in ``evaluation``
    # An evaluation's rebalance dates, history, horizons, quantiles, neutralize, field.
    evaluation: dict[str, Any] | None = None
    cross_section: dict[str, Any] | None = None  # an execute job's transform (API.md)

    @property
    def total(self) -> int:
        """What progress counts: symbols, or an evaluation's symbol-dates."""
        if self.evaluation is not None:
            return len(self.symbols) * len(self.evaluation["dates"])
        return len(self.symbols)


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


# Write a new job's record, list it under its owner and among the owner's active jobs (how
# the watchdog finds it), in one round trip (the submit path is hot). With a limit (ARGV[4]
# not empty) and the owner already at that many active jobs, write nothing and answer 0.
# Active members are scored by when they must have ended; older ones are stale (a job whose
# finish was lost) and are dropped first.
# With a fourth key, ARGV[7] is pushed onto that list with the record (the job's task message:
# never a record without its task, nor a task without its record).
# KEYS: job, owner's index, owner's active set[, list]. ARGV: now, ttl, jobs listed, limit,
# ends by, job id, value to push or '', then the record's fields and values.
_CREATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
if ARGV[4] ~= '' and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
if #KEYS == 4 then
  redis.call('LPUSH', KEYS[4], ARGV[7])
end
return 1
"""


# Write each outcome once (HSETNX) in one round trip; answer how many symbols are done.
_RECORD = """
for i = 1, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(KEYS[2]))
return redis.call('HLEN', KEYS[1])
"""


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
        self._record = client.register_script(_RECORD)

    # -- keys -----------------------------------------------------------------
    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}"

    def _results(self, job_id: str) -> str:
        return f"{self.key(job_id)}:results"

    def _finish(self, job_id: str) -> str:
        return f"{self.key(job_id)}:finish"

    def channel(self, job_id: str) -> str:
        return f"{self.key(job_id)}:done"

    @staticmethod
    def _owner_index(owner: str | None) -> str:
        return f"{PREFIX}:jobs:{owner_key(owner)}"

    @staticmethod
    def _active(owner: str | None) -> str:
        return f"{PREFIX}:active:{owner_key(owner)}"

    def release_active(self, owner: str | None, job_id: str) -> None:
        self.r.zrem(self._active(owner), job_id)

    # -- creating -------------------------------------------------------------
    def create(
        self,
        spec: JobSpec,
        *,
        active_limit: int | None = None,
        push: tuple[str, str] | None = None,
        now: float | None = None,
    ) -> Job:
        """Write the job's record (status ``queued``); answer the job as just written (what
        ``load`` would read back, without the round trips).

        The job is counted among its owner's active jobs; with ``active_limit`` and the
        owner already at that many, nothing is written: ``TooManyActiveJobs``. ``push`` is a
        Redis list and a value pushed onto it with the record, atomically (the job's task
        message: ``workers.task_messages``).
        """
        now = time.time() if now is None else now
        fields = {
            "job_id": spec.job_id,
            "owner": owner_key(spec.owner),
            "code": spec.code,
            "code_sha256": spec.code_sha256,
            "symbols": json.dumps(spec.symbols),
            "params": json.dumps(spec.params),
            "lookback": spec.lookback,
            "as_of": spec.as_of or "",
            "wall_seconds": spec.wall_seconds,
            "script_id": "" if spec.script_id is None else spec.script_id,
            "source": spec.source,
            "status": JobStatus.QUEUED.value,
            "created_at": now,
            "deadline": now + self.queue_timeout,
            "total": spec.total,
            "kind": spec.kind,
        }
        if spec.evaluation is not None:
            fields["evaluation_spec"] = json.dumps(spec.evaluation)
        if spec.cross_section is not None:
            fields["cross_section_spec"] = json.dumps(spec.cross_section)
        ends_by = now + self.queue_timeout + spec.wall_seconds + WATCHDOG_GRACE_SECONDS
        limit = "" if active_limit is None else active_limit
        keys = [self.key(spec.job_id), self._owner_index(spec.owner), self._active(spec.owner)]
        args = [now, self.ttl, MAX_JOBS_LISTED, limit, ends_by, spec.job_id, ""]
        if push is not None:
            keys.append(push[0])
            args[-1] = push[1]
        for name, value in fields.items():
            args += (name, value)
        if not self._create(keys=keys, args=args):
            raise TooManyActiveJobs(f"at most {active_limit} jobs may be queued or running at once")
        return Job({k: str(v) for k, v in fields.items()}, {}, 0)

    def discard(self, job_id: str, owner: str | None) -> None:
        """Remove a job that could not be enqueued, so no half-made job is left behind."""
        pipe = self.r.pipeline()
        pipe.delete(
            self.key(job_id),
            self._results(job_id),
            self._finish(job_id),
            f"{self.key(job_id)}:tries",
            *(f"{self.key(job_id)}:{part}" for part in EVALUATION_PARTS),
        )
        pipe.zrem(self._owner_index(owner), job_id)
        pipe.zrem(self._active(owner), job_id)
        pipe.execute()

    # -- the worker's side ----------------------------------------------------
    def spec(self, job_id: str) -> JobSpec | None:
        raw = self.r.hgetall(self.key(job_id))
        if not raw:
            return None
        h = _decode(raw)
        return JobSpec(
            job_id=h["job_id"],
            owner=h["owner"] or None,
            code=h["code"],
            code_sha256=h["code_sha256"],
            symbols=json.loads(h["symbols"]),
            params=json.loads(h["params"]),
            lookback=int(h["lookback"]),
            as_of=h["as_of"] or None,
            wall_seconds=float(h["wall_seconds"]),
            script_id=int(h["script_id"]) if h.get("script_id") else None,
            source=h.get("source", "api"),
            kind=h.get("kind", "execute"),
            evaluation=json.loads(h["evaluation_spec"]) if h.get("evaluation_spec") else None,
            cross_section=(
                json.loads(h["cross_section_spec"]) if h.get("cross_section_spec") else None
            ),
        )

    def status(self, job_id: str) -> JobStatus | None:
        raw = self.r.hget(self.key(job_id), "status")
        return None if raw is None else JobStatus(_text(raw))

    def created_at(self, job_id: str) -> float | None:
        raw = self.r.hget(self.key(job_id), "created_at")
        return None if raw is None else float(raw)

    def deadline(self, job_id: str) -> float | None:
        raw = self.r.hget(self.key(job_id), "deadline")
        return None if raw is None else float(raw)

    def mark_running(self, job_id: str, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return bool(self._mark_running(keys=[self.key(job_id)], args=[repr(now)]))

    def set_fields(self, job_id: str, **fields: Any) -> None:
        self.r.hset(self.key(job_id), mapping=fields)

    def recorded_symbols(self, job_id: str) -> set[str]:
        return {_text(s) for s in self.r.hkeys(self._results(job_id))}

    def record_outcomes(self, job_id: str, outcomes: Iterable[tuple[str, dict]]) -> int:
        """Write each outcome once; answer how many symbols are now done."""
        args: list[str] = []
        for symbol, outcome in outcomes:
            args.extend((symbol, _compact(outcome)))
        return int(self._record(keys=[self._results(job_id), str(self.ttl)], args=args))

    def count_chunk_try(self, job_id: str, chunk_no: int, *, by: int = 1) -> int:
        """Count one more delivery of a chunk; answer how many there have been."""
        key = f"{self.key(job_id)}:tries"
        pipe = self.r.pipeline()
        pipe.hincrby(key, str(chunk_no), by)
        pipe.expire(key, self.ttl)
        return int(pipe.execute()[0])

    def add_cache_hits(self, job_id: str, count: int) -> None:
        if count:
            self.r.hincrby(self.key(job_id), "cache_hits", count)

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

        Symbols without an outcome get ``fill_error`` (a timed-out or cancelled
        job's rest), so a finished job has every requested symbol. ``claim=False`` is
        for the watchdog only: it finishes a job whose finisher died after claiming it.
        """
        now = time.time() if now is None else now
        if claim and not self.r.set(self._finish(job_id), repr(now), nx=True, ex=self.ttl):
            return False
        raw = self.r.hmget(self.key(job_id), ["symbols", "started_at", "owner", "kind"])
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
        pipe.hset(self.key(job_id), mapping=fields)
        pipe.zrem(self._active(_text(raw[2] or b"") or None), job_id)
        pipe.publish(self.channel(job_id), status.value)
        pipe.execute()
        return True

    # -- the API's side -------------------------------------------------------
    def load(self, job_id: str, *, owner: str | None, with_results: bool = True) -> Job | None:
        """The job as its owner sees it, or None (unknown, expired, or someone else's)."""
        raw = self.r.hgetall(self.key(job_id))
        if not raw:
            return None
        h = _decode(raw)
        if h.get("owner", "") != owner_key(owner):
            return None
        if self._overdue(h) and self.expire_overdue(job_id, h):
            return self.load(job_id, owner=owner, with_results=with_results)
        if h.get("kind") == "evaluation":
            finished = JobStatus(h["status"]).finished
            return self._load_evaluation(job_id, h, with_figures=with_results and finished)
        if with_results:
            results = _decode(self.r.hgetall(self._results(job_id)))
            return Job(h, results, len(results))
        return Job(h, None, int(self.r.hlen(self._results(job_id))))

    def _load_evaluation(self, job_id: str, h: dict[str, str], *, with_figures: bool) -> Job:
        """An evaluation: progress over its panel, and once finished its figures."""
        base = self.key(job_id)
        pipe = self.r.pipeline(transaction=False)
        pipe.hlen(f"{base}:panel")
        pipe.get(f"{base}:evaluation")
        done, evaluation = pipe.execute()
        if with_figures:
            h = {**h, "evaluation": _text(evaluation) if evaluation is not None else "null"}
        return Job(h, None, int(done))

    def load_any(self, job_id: str) -> Job | None:
        """The job whoever owns it (for the workers' own bookkeeping, never for a response)."""
        raw = self.r.hgetall(self.key(job_id))
        if not raw:
            return None
        h = _decode(raw)
        if h.get("kind") == "evaluation":
            return self._load_evaluation(job_id, h, with_figures=True)
        results = _decode(self.r.hgetall(self._results(job_id)))
        return Job(h, results, len(results))

    def _overdue(self, h: dict[str, str]) -> bool:
        if JobStatus(h["status"]).finished:
            return False
        return time.time() > float(h["deadline"]) + WATCHDOG_GRACE_SECONDS

    def expire_overdue(self, job_id: str, h: dict[str, str] | None = None) -> bool:
        """The watchdog: a job past its deadline ends, even if every worker died."""
        h = h or _decode(self.r.hgetall(self.key(job_id)))
        if not h or JobStatus(h["status"]).finished:
            return False
        claim = not self._finisher_died(job_id)
        if JobStatus(h["status"]) is JobStatus.QUEUED:
            err = {"type": "NoWorker", "message": "no worker picked up the job in time"}
            return self.finish(job_id, JobStatus.FAILED, error=err, fill_error=err, claim=claim)
        return self.finish(
            job_id, JobStatus.TIMED_OUT, **timeout_errors(h["wall_seconds"]), claim=claim
        )

    def _finisher_died(self, job_id: str) -> bool:
        """Someone claimed the right to finish this job long ago and never did."""
        claimed = self.r.get(self._finish(job_id))
        return claimed is not None and time.time() - float(claimed) > FINISHER_GRACE_SECONDS

    def sweep_overdue(self, *, now: float | None = None) -> list[str]:
        """End every active job past its deadline (the watchdog's periodic pass)."""
        now = time.time() if now is None else now
        ended = []
        for key in self.r.scan_iter(match=f"{PREFIX}:active:*", count=500):
            for raw in self.r.zrangebyscore(key, "-inf", now):
                job_id = _text(raw)
                if self.expire_overdue(job_id):
                    ended.append(job_id)
                else:
                    self.r.zrem(key, raw)  # already finished or expired: drop the stale entry
        return ended

    def list_for(self, owner: str | None, *, limit: int) -> list[Job]:
        ids = self.r.zrevrange(self._owner_index(owner), 0, max(0, limit - 1))
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


def timeout_errors(wall_seconds: str | float) -> dict[str, Any]:
    message = f"the job exceeded its wall-clock limit of {float(wall_seconds):g} s"
    return {
        "error": {"type": "TimeoutError", "message": message},
        "fill_error": {"type": "TimeoutError", "message": "not run: " + message},
    }


class Job:
    """A job read back from Redis, ready to be shown (API.md's job object)."""

    def __init__(self, fields: dict[str, str], results: dict[str, str] | None, done: int):
        self.fields = fields
        self.results = results
        self.done = done

    @property
    def id(self) -> str:
        return self.fields["job_id"]

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.fields["status"])

    @property
    def kind(self) -> str:
        return self.fields.get("kind", "execute")

    def summary(self) -> dict[str, Any]:
        """The public job without ``results`` and ``stdout``: what the audit trail and the
        metrics need. Only outcomes that hold an error are parsed (``_compact`` writes the key
        only then; a finished 5,000-symbol job is mostly values), which keeps this cheap on
        the finishing path."""
        errors: dict[str, Any] = {}
        for symbol, raw in (self.results or {}).items():
            if '"error":' in raw:
                err = json.loads(raw).get("error")
                if err:
                    errors[symbol] = err
        return {**self._head(), "errors": errors}

    def to_public(self) -> dict[str, Any]:
        head = self._head()
        # API.md's order: the per-symbol fields come right after ``progress``.
        body = {k: head[k] for k in ("job_id", "kind", "status", "script_id", "progress")}
        if self.results is not None:
            results: dict[str, Any] = {}
            errors: dict[str, Any] = {}
            stdout: dict[str, str] = {}
            for symbol in json.loads(self.fields["symbols"]):
                raw = self.results.get(symbol)
                if raw is None:
                    continue
                outcome = json.loads(raw)
                results[symbol] = outcome.get("value")
                if outcome.get("error"):
                    errors[symbol] = outcome["error"]
                if outcome.get("stdout"):
                    stdout[symbol] = outcome["stdout"]
            body.update(results=results, errors=errors, stdout=stdout)
        if "cross_section" in self.fields:  # written by the worker that finished the job
            body["cross_section"] = json.loads(self.fields["cross_section"])
        if "evaluation" in self.fields:  # a finished evaluation, read with its figures
            body["evaluation"] = json.loads(self.fields["evaluation"])
        body.update((k, v) for k, v in head.items() if k not in body)
        return body

    def _head(self) -> dict[str, Any]:
        """Every field of the public job but the per-symbol ones, in API.md's order."""
        f = self.fields
        started = _float_or_none(f.get("started_at"))
        finished = _float_or_none(f.get("finished_at"))
        return {
            "job_id": f["job_id"],
            "kind": self.kind,
            "status": self.status.value,
            "script_id": int(f["script_id"]) if f.get("script_id") else None,
            "progress": {"done": self.done, "total": int(f["total"])},
            "error": json.loads(f["error"]) if f.get("error") else None,
            "cache_hits": int(f.get("cache_hits") or 0),
            "created_at": iso_utc(float(f["created_at"])),
            "started_at": iso_utc(started),
            "finished_at": iso_utc(finished),
            "duration_ms": int(f["duration_ms"]) if f.get("duration_ms") else None,
        }


def _compact(outcome: dict[str, Any]) -> str:
    slim = {"value": outcome.get("value")}
    if outcome.get("error"):
        slim["error"] = outcome["error"]
    if outcome.get("stdout"):
        slim["stdout"] = outcome["stdout"]
    return json.dumps(slim, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(raw: dict) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value else None


def ordered_unique(symbols: Sequence[str]) -> list[str]:
    """Upper-cased, duplicates dropped, order kept (API.md)."""
    seen: dict[str, None] = {}
    for s in symbols:
        seen.setdefault(s.strip().upper(), None)
    return list(seen)


def wait_finished(store: JobStore, job_id: str, timeout: float) -> None:
    """Block until the job finishes or ``timeout`` passes, woken by pub/sub (no sleep-polling).

    Subscribes before checking the status, so a job finishing in between is not missed.
    Waking at the job's deadline lets the watchdog in ``load`` end a job whose worker died.
    """
    end = time.monotonic() + timeout
    pubsub = store.r.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(store.channel(job_id))
        while True:
            status = store.status(job_id)
            if status is None or status.finished:
                return
            deadline = store.deadline(job_id)
            remaining = end - time.monotonic()
            if deadline is not None:
                remaining = min(remaining, deadline + WATCHDOG_GRACE_SECONDS - time.time())
            if remaining <= 0:
                return
            if pubsub.get_message(timeout=min(remaining, 1.0)) is not None:
                return
    finally:
        pubsub.close()
