"""CSV exports of finished jobs, as text blocks to stream (never one string of the whole)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from workers.jobstore import JobStore
from workers.jobview import Job
from workers.panel import PanelStore

ROWS_PER_BLOCK = 1000


def results_csv(job: Job) -> Iterator[str]:
    """``symbol,value,error_type,error_message`` (a dict result: one column per key, in the
    order keys first appear), a row per requested symbol, in the job's order."""
    outcomes = job.results or {}
    symbols: list[str] = json.loads(job.fields["symbols"])
    keys: dict[str, None] = {}
    for raw in outcomes.values():
        value = json.loads(raw).get("value")
        if isinstance(value, dict):
            keys.update(dict.fromkeys(value))
    columns = list(keys) or ["value"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["symbol", *columns, "error_type", "error_message"])
    for count, symbol in enumerate(symbols, start=1):
        outcome: dict[str, Any] = json.loads(outcomes.get(symbol, "{}"))
        value = outcome.get("value")
        err = outcome.get("error") or {}
        if isinstance(value, dict):
            cells = [_number(value.get(k)) for k in columns]
        else:
            cells = [_number(value)] + [""] * (len(columns) - 1)
        writer.writerow([symbol, *cells, err.get("type", ""), err.get("message", "")])
        if count % ROWS_PER_BLOCK == 0:
            yield _drain(out)
    if out.tell():
        yield _drain(out)


def panel_csv(store: JobStore, job: Job) -> Iterator[bytes]:
    """The finished evaluation's panel, as the finisher wrote it (workers/evaluation_finish)."""
    return PanelStore(store.r, ttl_seconds=store.ttl).row_blocks(job.id)


def _number(value: Any) -> str:
    return "" if value is None else repr(value)


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text
