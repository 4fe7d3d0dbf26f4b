"""Finishing an evaluation: its figures, computed once from the panel and the forward returns
(which the chunks stored: workers/forward.py), stored beside the job with the panel's numbers
(panel.csv is made of them when downloaded: workers/panel_csv.py), then the job's end."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from db.evaluation_data import load_closes, load_sectors
from db.session import session_scope
from logconfig import job_fields
from workers.deadlines import timed_out
from workers.figures import Figures, compute_table
from workers.forward import ForwardReturns
from workers.jobspec import JobSpec
from workers.jobstore import JobStore
from workers.keys import FIGURES_CLAIM_PART, job_part
from workers.panel import PanelStore
from workers.panel_csv import pack
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
        job_part(spec.job_id, FIGURES_CLAIM_PART), 1, nx=True, ex=FIGURES_CLAIM_SECONDS
    ):
        return False
    error = timed_out(spec.wall_seconds).error if status is JobStatus.TIMED_OUT else None
    try:
        evaluation, blocks = evaluate(panel, spec, rt=rt)
        panel.save_result(spec.job_id, evaluation, blocks)
        panel.drop_forward(spec.job_id)
    except Exception:  # the job must still end: failed, saying the figures could not be made
        log.exception("evaluation figures failed", extra=job_fields(spec.job_id))
        status = JobStatus.FAILED
        error = {"type": "EvaluationError", "message": "the figures could not be computed"}
    finished = store.finish(spec.job_id, status, error=error)
    if finished:
        log.info("evaluation finished", extra=job_fields(spec.job_id, status=status.value))
    return finished


def evaluate(
    panel: PanelStore, spec: JobSpec, *, rt: Runtime
) -> tuple[dict[str, Any], list[bytes]]:
    """The ``evaluation`` object and the panel's numbers, packed per date."""
    ev = spec.evaluation or {}
    dates: list[str] = ev["dates"]
    # The forward returns and sectors are read while the panel is: the job's end waits for
    # the longer of the two, not for both.
    with ThreadPoolExecutor(max_workers=1) as pool:
        market = pool.submit(_market_data, panel, spec, rt)
        values, runs, errors, examples = _panel_values(panel, spec)
        forward, sectors = market.result()
    figures = compute_table(
        pd.DataFrame(values, index=dates, columns=spec.symbols),
        forward,
        quantiles=ev["quantiles"],
        neutralize=ev.get("neutralize"),
        sectors=sectors,
    )
    finite = int(np.isfinite(values).sum())
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
    return evaluation, list(packed_dates(spec, values, figures))


def _market_data(
    panel: PanelStore, spec: JobSpec, rt: Runtime
) -> tuple[dict[int, pd.DataFrame], dict[str, Any]]:
    """The forward returns (per horizon, rebalance date x symbol) and the sectors. The chunks
    stored their symbols' forward returns; those of any other symbol (a chunk that never ran,
    or a job planned without its calendar) come from its closes here, the same way."""
    ev = spec.evaluation or {}
    calendar: list[str] | None = ev.get("calendar")
    returns: dict[str, np.ndarray] = {}
    if calendar is not None:
        forward = ForwardReturns(calendar, ev["dates"], ev["horizons"])
        for symbol, raw in panel.forward(spec.job_id).items():
            unpacked = forward.unpack(raw)
            if unpacked is not None:
                returns[symbol] = unpacked
    missing = [s for s in spec.symbols if s not in returns]
    with session_scope(rt.market_engine) as session:
        sectors = load_sectors(spec.symbols, session=session)
        last = date.fromisoformat(ev["until"])
        closes = load_closes(missing, session=session, last=last) if missing else []
    if calendar is None:  # the calendar as the closes of every symbol give it
        forward = ForwardReturns(sorted({day for _, day, _ in closes}), ev["dates"], ev["horizons"])
    returns.update(forward.of_closes(closes))
    return forward.tables(returns, spec.symbols), sectors


def _panel_values(
    panel: PanelStore, spec: JobSpec
) -> tuple[np.ndarray, int, Counter[str], list[dict[str, Any]]]:
    """The panel's values as a table (dates x symbols, NaN: none), its runs, and its errors
    by type with their examples."""
    dates: list[str] = (spec.evaluation or {})["dates"]
    column = {s: j for j, s in enumerate(spec.symbols)}
    values = np.full((len(dates), len(spec.symbols)), np.nan)
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
        elif isinstance(outcome.get("value"), (int, float)) and symbol in column:
            values[index, column[symbol]] = float(outcome["value"])
    return values, runs, errors, examples


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


def packed_dates(spec: JobSpec, values: np.ndarray, figures: Figures) -> Iterator[bytes]:
    """The panel's numbers, a packed row set per rebalance date (workers/panel_csv.py)."""
    horizons: list[int] = (spec.evaluation or {})["horizons"]
    for i in range(len(values)):
        yield pack(
            values[i],
            [figures.quantile_table[h][i] for h in horizons],
            [figures.forward_table[h][i] for h in horizons],
        )
