"""What a job ran on (API.md, the job's ``provenance``), so that a number can be reproduced.

Written with the job from what the request fixed; completed as the job starts with what the
data decided: the last trading date actually used (a Saturday's ``as_of`` is the Friday
before) and the market data's version then (``db.market_index.data_version``). Until the job
starts those two are ``None``.
"""

from __future__ import annotations

import json
from typing import Any

from workers.jobspec import JobSpec


def initial(spec: JobSpec) -> dict[str, Any]:
    """The provenance as the job is queued. An evaluation's requested date is its ``end``."""
    evaluation = spec.evaluation or {}
    requested = evaluation.get("end") if spec.kind == "evaluation" else spec.as_of
    return {
        "code_sha256": spec.code_sha256,
        "params": spec.params,
        "lookback": spec.lookback,
        "reference": list(spec.reference),
        "as_of_requested": requested,
        "as_of": None,
        "data_version": None,
        "symbols": len(spec.symbols),
    }


def completed(raw: str | None, spec: JobSpec, *, as_of: str | None, version: int | None) -> str:
    """The stored provenance (``raw``, or made from ``spec``) with the job's date and version."""
    provenance = json.loads(raw) if raw else initial(spec)
    provenance.update(as_of=as_of, data_version=version)
    return json.dumps(provenance, separators=(",", ":"))
