"""Finishing an evaluation: its figures, computed once from the panel and the closes (read
once per job), stored beside the job with the panel's CSV rows, then the job's end."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd

from db.evaluation_data import load_closes, load_sectors
from db.session import session_scope
from logconfig import job_fields
from workers.deadlines import timed_out
from workers.figures import Figures, compute, forward_returns
from workers.jobspec import JobSpec
from workers.jobstore import JobStore
from workers.panel import ROWS_PER_BLOCK, PanelStore
from workers.runtime import Runtime
from workers.status import JobStatus

log = logging.getLogger(__name__)

MAX_ERROR_EXAMPLES = 10
FIGURES_CLAIM_SECONDS = 600


def finish_evaluation(store: JobStore, spec: JobSpec, status: JobStatus, *, rt: Runtime) -> bool:
    """Compute and store the figures of what finished, then end the job with ``status``;
    whoever claims the figures first does both (others return False)."""
    panel = PanelStore(store.r, ttl_seconds=store.ttl)
    if not store.r.set(
        f"{panel.evaluation_key(spec.job_id)}:claim", 1, nx=True, ex=FIGURES_CLAIM_SECONDS
    ):
        return False
    error = timed_out(spec.wall_seconds).error if status is JobStatus.TIMED_OUT else None
    try:
        evaluation, blocks = evaluate(panel, spec, rt=rt)
        panel.save_result(spec.job_id, evaluation, blocks)
    except Exception:  # the job must still end: failed, saying the figures could not be made
        log.exception("evaluation figures failed", extra=job_fields(spec.job_id))
        status = JobStatus.FAILED
        error = {"type": "EvaluationError", "message": "the figures could not be computed"}
    finished = store.finish(spec.job_id, status, error=error)
    if finished:
        log.info("evaluation finished", extra=job_fields(spec.job_id, status=status.value))
    return finished


def evaluate(panel: PanelStore, spec: JobSpec, *, rt: Runtime) -> tuple[dict[str, Any], list[str]]:
    """The ``evaluation`` object and the panel's CSV blocks."""
    ev = spec.evaluation or {}
    dates: list[str] = ev["dates"]
    horizons: list[int] = ev["horizons"]
    values: dict[tuple[str, str], float] = {}
    errors: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    runs = 0
    for index, symbol, outcome in panel.outcomes(spec.job_id):
        runs += 1
        err = outcome.get("error")
        if err:
            errors[err["type"]] += 1
            examples.append(
                {
                    "symbol": symbol,
                    "date": dates[index],
                    "type": err["type"],
                    "line": err.get("line"),
                    "message": err["message"],
                }
            )
        elif isinstance(outcome.get("value"), (int, float)):
            values[(dates[index], symbol)] = float(outcome["value"])
    with session_scope(rt.market_engine) as session:
        closes = load_closes(spec.symbols, session=session, last=date.fromisoformat(ev["until"]))
        sectors = load_sectors(spec.symbols, session=session)
    series = pd.Series(
        list(values.values()),
        index=pd.MultiIndex.from_tuples(list(values) or [], names=["date", "symbol"]),
        dtype=float,
    )
    figures = compute(
        series,
        forward_returns(closes, dates, horizons),
        dates=dates,
        quantiles=ev["quantiles"],
        neutralize=ev.get("neutralize"),
        sectors=sectors,
    )
    finite = sum(1 for v in values.values() if math.isfinite(v))
    evaluation = {
        "dates": len(dates),
        "symbols": len(spec.symbols),
        "runs": runs,
        "coverage": finite / (len(dates) * len(spec.symbols)) if dates and spec.symbols else 0.0,
        "dates_skipped": figures.dates_skipped,
        "errors_by_type": dict(errors.most_common()),
        "error_examples": _examples(examples),
        "horizons": figures.horizons,
        "ic_series": figures.ic_series,
    }
    return evaluation, list(csv_blocks(spec, values, figures))


def _examples(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few errors, each type's first (by date, then symbol) before any type's second."""
    examples.sort(key=lambda e: (e["date"], e["symbol"]))
    seen: Counter[str] = Counter()
    ranked = []
    for e in examples:
        ranked.append((seen[e["type"]], e))
        seen[e["type"]] += 1
    ranked.sort(key=lambda pair: pair[0])
    return [e for _, e in ranked[:MAX_ERROR_EXAMPLES]]


def panel_header(horizons: list[int]) -> list[str]:
    return [
        "date",
        "symbol",
        "value",
        *(f"quantile_{h}" for h in horizons),
        *(f"forward_{h}" for h in horizons),
    ]


def csv_blocks(
    spec: JobSpec, values: dict[tuple[str, str], float], figures: Figures
) -> Iterator[str]:
    """The panel's rows (every symbol-date, by date then the job's symbol order) as CSV text
    in blocks of ``ROWS_PER_BLOCK``, the header first."""
    ev = spec.evaluation or {}
    horizons: list[int] = ev["horizons"]
    quantiles = {h: figures.quantiles[h].to_dict() for h in horizons}
    forward = {h: figures.forward[h].to_dict() for h in horizons}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(panel_header(horizons))
    rows = 0
    for day in ev["dates"]:
        for symbol in spec.symbols:
            key = (day, symbol)
            value = values.get(key)
            writer.writerow(
                [
                    day,
                    symbol,
                    "" if value is None else repr(value),
                    *(_cell(quantiles[h].get(key), int) for h in horizons),
                    *(_cell(forward[h].get(key), float) for h in horizons),
                ]
            )
            rows += 1
            if rows % ROWS_PER_BLOCK == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    if out.tell():
        yield out.getvalue()


def _cell(value: Any, kind: type) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return str(int(value)) if kind is int else repr(float(value))
