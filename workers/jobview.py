"""A job read back from Redis, rendered as API.md's job object."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from workers.status import JobStatus


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


# The tallies' fields in the job's hash, counted by ``workers.jobstore.RECORD_WITH_TALLIES``:
# symbols (an evaluation's runs) per error type and per warning, the distinct warnings so far,
# and those past ``MAX_DISTINCT_WARNINGS`` counted together.
TALLY_ERROR = "tally:e:"
TALLY_WARNING = "tally:w:"
TALLY_WARNINGS_DISTINCT = "tally:wn"
TALLY_OTHER_WARNINGS = "tally:w*"
MAX_DISTINCT_WARNINGS = 20


def tallies(fields: dict[str, str]) -> dict[str, Any]:
    """``errors_by_type`` (type -> symbols, most first) and ``warnings`` (each once, with how
    many symbols, or an evaluation's runs, it happened in; most first) from the job's hash."""
    errors: list[tuple[str, int]] = []
    warnings: list[tuple[str, int]] = []
    other = 0
    for name, value in fields.items():
        if not name.startswith("tally:"):
            continue
        if name.startswith(TALLY_ERROR):
            errors.append((name[len(TALLY_ERROR) :], int(value)))
        elif name == TALLY_OTHER_WARNINGS:
            other = int(value)
        elif name.startswith(TALLY_WARNING):
            warnings.append((name[len(TALLY_WARNING) :], int(value)))
    errors.sort(key=lambda pair: (-pair[1], pair[0]))
    warnings.sort(key=lambda pair: (-pair[1], pair[0]))
    listed = [{"message": message, "count": count} for message, count in warnings]
    if other:
        listed.append({"message": "other warnings (more kinds than are listed)", "count": other})
    return {"errors_by_type": dict(errors), "warnings": listed}


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value else None
