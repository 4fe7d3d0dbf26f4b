"""An evaluation's dates, from its calendar (API.md): fixed at submit, so a bad range is a 400."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from typing import Any

MAX_DATES = 1260
MAX_SYMBOL_DATES = 2_000_000


class PlanError(ValueError):
    """The request asks for dates it cannot have; ``field`` names the request's field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EvaluationPlan:
    """The rebalance dates and what the workers must load for them."""

    dates: list[str]
    history_bars: int  # calendar dates from the first window's start to the last date
    until: str  # the last calendar date a forward return reaches
    # The calendar from the first rebalance date to ``until``: the forward returns' dates,
    # fixed with the rebalance dates so that every chunk works them out on the same calendar.
    calendar: list[str]

    def spec(
        self, *, horizons: list[int], quantiles: int, neutralize: str | None, field: str | None
    ) -> dict[str, Any]:
        return {
            "dates": self.dates,
            "history_bars": self.history_bars,
            "until": self.until,
            "calendar": self.calendar,
            "horizons": horizons,
            "quantiles": quantiles,
            "neutralize": neutralize,
            "field": field,
        }


def plan_dates(
    calendar: list[str],
    *,
    start: date,
    end: date,
    every: int,
    lookback: int,
    horizons: list[int],
    symbols: int,
) -> EvaluationPlan:
    """Calendar dates from the first on or after ``start``, then every ``every``-th, up to
    ``end`` inclusive; at most 1,260 of them and 2,000,000 symbol-dates."""
    if start > end:
        raise PlanError("start", f"start ({start}) is after end ({end})")
    first = bisect.bisect_left(calendar, start.isoformat())
    last = bisect.bisect_right(calendar, end.isoformat())
    indexes = range(first, last, every)
    if not indexes:
        raise PlanError("start", f"no trading date of these symbols between {start} and {end}")
    if len(indexes) > MAX_DATES:
        message = f"{len(indexes)} rebalance dates; at most {MAX_DATES} (raise every)"
        raise PlanError("every", message)
    if len(indexes) * symbols > MAX_SYMBOL_DATES:
        message = f"{len(indexes) * symbols} symbol-dates; at most {MAX_SYMBOL_DATES}"
        raise PlanError("symbols", message)
    i_first, i_last = indexes[0], indexes[-1]
    window_start = max(0, i_first - lookback + 1)
    until = min(len(calendar) - 1, i_last + max(horizons))
    return EvaluationPlan(
        dates=[calendar[i] for i in indexes],
        history_bars=i_last - window_start + 1,
        until=calendar[until],
        calendar=calendar[i_first : until + 1],
    )
