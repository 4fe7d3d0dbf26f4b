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
from workers.panel_csv import csv_blocks as panel_csv_blocks
from workers.panel_csv import drain

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
            yield drain(out)
    if out.tell():
        yield drain(out)


def panel_csv(store: JobStore, job: Job) -> Iterator[str]:
    """The finished evaluation's panel, made CSV from the numbers its finisher stored."""
    spec = json.loads(job.fields["evaluation_spec"])
    symbols: list[str] = json.loads(job.fields["symbols"])
    rows = PanelStore(store.r, ttl_seconds=store.ttl).packed_rows(job.id)
    return panel_csv_blocks(spec["dates"], symbols, spec["horizons"], rows)


def _number(value: Any) -> str:
    return "" if value is None else repr(value)
