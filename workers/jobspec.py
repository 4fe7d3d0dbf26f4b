"""What a job runs, fixed when it is queued: ``JobSpec`` and how one is made."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LOOKBACK = 252  # trading days of history per symbol (API.md)


def new_job_id() -> str:
    return str(uuid.uuid4())


def ordered_unique(symbols: Sequence[str]) -> list[str]:
    """Upper-cased, duplicates dropped, order kept (API.md)."""
    seen: dict[str, None] = {}
    for s in symbols:
        seen.setdefault(s.strip().upper(), None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a worker needs to run a job, fixed when the job is queued."""

    job_id: str
    owner: str | None
    code: str
    code_sha256: str
    symbols: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    lookback: int = DEFAULT_LOOKBACK
    as_of: str | None = None
    wall_seconds: float = 10.0
    script_id: int | None = None
    source: str = "api"
    kind: str = "execute"  # or "evaluation" (API.md), whose spec is in ``evaluation``
    # An evaluation's rebalance dates, history, horizons, quantiles, neutralize, field.
    evaluation: dict[str, Any] | None = None
    cross_section: dict[str, Any] | None = None  # an execute job's transform (API.md)
    reference: list[str] = field(default_factory=list)  # API.md, "Reference series"

    @property
    def total(self) -> int:
        """What progress counts: symbols, or an evaluation's symbol-dates."""
        if self.evaluation is not None:
            return len(self.symbols) * len(self.evaluation["dates"])
        return len(self.symbols)

    @classmethod
    def new(cls, *, symbols: Sequence[str], **fields: Any) -> JobSpec:
        """A spec with a fresh job id and the symbols as API.md normalises them."""
        return cls(job_id=new_job_id(), symbols=ordered_unique(symbols), **fields)

    def to_fields(self) -> dict[str, Any]:
        """The spec as fields of the job's record in Redis (``JobStore.create``)."""
        fields: dict[str, Any] = {
            "job_id": self.job_id,
            "owner": self.owner or "",
            "code": self.code,
            "code_sha256": self.code_sha256,
            "symbols": json.dumps(self.symbols),
            "params": json.dumps(self.params),
            "lookback": self.lookback,
            "as_of": self.as_of or "",
            "wall_seconds": self.wall_seconds,
            "script_id": "" if self.script_id is None else self.script_id,
            "source": self.source,
            "kind": self.kind,
        }
        if self.evaluation is not None:
            fields["evaluation_spec"] = json.dumps(self.evaluation)
        if self.cross_section is not None:
            fields["cross_section_spec"] = json.dumps(self.cross_section)
        if self.reference:
            fields["reference"] = json.dumps(self.reference)
        return fields

    @classmethod
    def from_fields(cls, h: dict[str, str]) -> JobSpec:
        """The spec back from the job's record (``to_fields``)."""
        return cls(
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
            reference=json.loads(h["reference"]) if h.get("reference") else [],
        )
