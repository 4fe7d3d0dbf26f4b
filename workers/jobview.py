"""A job read back from Redis (only reads: a job whose workers died is ended by the watchdog,
``workers.watchdog``), rendered as API.md's job object."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis

from workers.keys import FIGURES_PART, PANEL_PART, job_key, job_part, owner_index, owner_key
from workers.redis_text import decoded, text
from workers.status import JobStatus
from workers.tallies import tallies


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a ``Z`` and milliseconds (API.md's times)."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_datetime(value: datetime | None) -> str | None:
    """A database timestamp in the same format."""
    return None if value is None else iso_utc(value.timestamp())


def outcome_json(outcome: dict[str, Any]) -> str:
    """One symbol's outcome as stored: the value, and the error and stdout only when set."""
    slim = {"value": outcome.get("value")}
    if outcome.get("error"):
        slim["error"] = outcome["error"]
    if outcome.get("stdout"):
        slim["stdout"] = outcome["stdout"]
    return json.dumps(slim, separators=(",", ":"))


class Job:
    """A job's record (``fields``), its outcomes by symbol (None when not read) and how many
    symbols are done."""

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
        metrics need. Only outcomes that hold an error are parsed (``outcome_json`` writes
        the key only then; a finished 5,000-symbol job is mostly values), which keeps this
        cheap on the finishing path."""
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
        return {
            "job_id": f["job_id"],
            "kind": self.kind,
            "status": self.status.value,
            "script_id": int(f["script_id"]) if f.get("script_id") else None,
            "progress": {"done": self.done, "total": int(f["total"])},
            "error": json.loads(f["error"]) if f.get("error") else None,
            "cache_hits": int(f.get("cache_hits") or 0),
            **tallies(f),
            "provenance": json.loads(f["provenance"]) if f.get("provenance") else None,
            "created_at": iso_utc(float(f["created_at"])),
            "started_at": iso_utc(_float_or_none(f.get("started_at"))),
            "finished_at": iso_utc(_float_or_none(f.get("finished_at"))),
            "duration_ms": int(f["duration_ms"]) if f.get("duration_ms") else None,
        }


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value else None


def load(
    client: redis.Redis, job_id: str, *, owner: str | None, with_results: bool = True
) -> Job | None:
    """The job as its owner sees it, or None (unknown, expired, or someone else's)."""
    raw = client.hgetall(job_key(job_id))
    if not raw:
        return None
    h = decoded(raw)
    if h.get("owner", "") != owner_key(owner):
        return None
    if h.get("kind") == "evaluation":
        finished = JobStatus(h["status"]).finished
        return _load_evaluation(client, job_id, h, with_figures=with_results and finished)
    if with_results:
        results = decoded(client.hgetall(job_part(job_id, "results")))
        return Job(h, results, len(results))
    return Job(h, None, int(client.hlen(job_part(job_id, "results"))))


def load_any(client: redis.Redis, job_id: str) -> Job | None:
    """The job as stored, whoever owns it (the workers' bookkeeping, never a response)."""
    raw = client.hgetall(job_key(job_id))
    if not raw:
        return None
    h = decoded(raw)
    if h.get("kind") == "evaluation":
        return _load_evaluation(client, job_id, h, with_figures=True)
    results = decoded(client.hgetall(job_part(job_id, "results")))
    return Job(h, results, len(results))


def list_for(client: redis.Redis, owner: str | None, *, limit: int) -> list[Job]:
    """The owner's newest jobs first, without their results (the listing's page)."""
    ids = client.zrevrange(owner_index(owner), 0, max(0, limit - 1))
    jobs = []
    for raw_id in ids:
        job = load(client, text(raw_id), owner=owner, with_results=False)
        if job is not None:
            jobs.append(job)
    return jobs


def _load_evaluation(
    client: redis.Redis, job_id: str, h: dict[str, str], *, with_figures: bool
) -> Job:
    """An evaluation: progress over its panel, and once finished its figures."""
    pipe = client.pipeline(transaction=False)
    pipe.hlen(job_part(job_id, PANEL_PART))
    pipe.get(job_part(job_id, FIGURES_PART))
    done, evaluation = pipe.execute()
    if with_figures:
        h = {**h, "evaluation": text(evaluation) if evaluation is not None else "null"}
    return Job(h, None, int(done))
