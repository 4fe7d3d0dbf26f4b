"""The built-in reference series (API.md, "Reference series"): ``@market`` and ``@sector``
index levels, the data version they belong to, and reference symbols' bars by date.

``@market`` is an equal-weighted index of every symbol over the data's calendar (the dates
on which any symbol has a bar): 100.0 on the first date, then ``level[t] = level[t-1] *
(1 + r[t])`` where ``r[t]`` is the mean close-to-close return from the previous calendar
date to ``t`` over the symbols with a bar on both (none: the level stays). A sector's index
is the same over that sector's symbols, on the same calendar. A level is a product of
returns up to its date, so it uses only bars on or before that date: point in time.

The database does the heavy part in one aggregation (per calendar date and sector: the sum
and count of returns, a join of each bar with the same symbol's bar on the previous calendar
date); the compounding over a few thousand dates is done here, with ``math.fsum`` over the
sectors in a fixed order, so the market's mean does not depend on the order rows arrive in.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, cast, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from db.market_data import Bars
from db.models import StockDailyData, StockDataVersion, StockInfo

BASE_LEVEL = 100.0
_bars = StockDailyData.__table__.c
_info = StockInfo.__table__.c
_versions = StockDataVersion.__table__.c


@dataclass(frozen=True, slots=True)
class IndexLevels:
    """Index levels on the data's calendar: the market's and each sector's."""

    dates: tuple[str, ...]
    market: tuple[float, ...]
    sectors: dict[str, tuple[float, ...]]

    def to_json(self) -> dict[str, Any]:
        return {"dates": self.dates, "market": self.market, "sectors": self.sectors}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IndexLevels:
        return cls(
            tuple(raw["dates"]),
            tuple(raw["market"]),
            {name: tuple(levels) for name, levels in raw["sectors"].items()},
        )


def data_version(*, session: Session) -> int | None:
    """One number for the whole market data that moves whenever the loader changes any bar
    or any stock's info: the sum of the per-symbol versions the loader bumps (each bump adds
    one; a new symbol adds its first). None when the database has no versions table (an
    external, read-only database): then nothing computed from it is cached."""
    try:
        with session.begin_nested():
            total, count = session.execute(
                select(func.coalesce(func.sum(_versions.version), 0), func.count())
            ).one()
    except SQLAlchemyError:  # no such table (a foreign schema): no version at all
        return None
    return int(total) if count else None


def index_levels(*, session: Session) -> IndexLevels:
    """``@market`` and every sector's index over the whole calendar (see the module doc)."""
    calendar = [d for (d,) in session.execute(select(_bars.date).distinct().order_by(_bars.date))]
    if not calendar:
        return IndexLevels((), (), {})
    days = (
        select(
            _bars.date.label("day"),
            func.lag(_bars.date).over(order_by=_bars.date).label("prev"),
        )
        .group_by(_bars.date)
        .subquery("days")
    )
    # Each bar joined with its symbol's bar on the previous calendar date, by primary key.
    # (A LAG over each symbol's bars, compared with the previous calendar date, measured
    # 2.5x slower on SQLite, whose window functions are slow.)
    today = StockDailyData.__table__.alias("today")
    before = StockDailyData.__table__.alias("before")
    change = cast(today.c.close, Float) / cast(before.c.close, Float) - 1.0
    rows = session.execute(
        select(days.c.day, _info.sector, func.sum(change), func.count())
        .select_from(days)
        .join(today, today.c.date == days.c.day)
        .join(before, and_(before.c.symbol == today.c.symbol, before.c.date == days.c.prev))
        .outerjoin(StockInfo.__table__, _info.symbol == today.c.symbol)
        .group_by(days.c.day, _info.sector)
    ).all()
    # (sum, count) per date and sector; None is the sector of symbols without one.
    sums: dict[dt.date, dict[str | None, tuple[float, int]]] = {}
    for day, sector, total, count in rows:
        sums.setdefault(day, {})[sector] = (float(total), int(count))
    names = sorted({sector for per_day in sums.values() for sector in per_day if sector})
    market: list[float] = []
    sectors: dict[str, list[float]] = {name: [] for name in names}
    level = BASE_LEVEL
    sector_level = dict.fromkeys(names, BASE_LEVEL)
    for index, day in enumerate(calendar):
        per_day = sums.get(day, {}) if index else {}
        parts = sorted(per_day.items(), key=lambda item: (item[0] is None, item[0] or ""))
        count = sum(n for _, (_, n) in parts)
        if count:
            level *= 1.0 + math.fsum(s for _, (s, _) in parts) / count
        market.append(level)
        for name in names:
            total, n = per_day.get(name, (0.0, 0))
            if n:
                sector_level[name] *= 1.0 + total / n
            sectors[name].append(sector_level[name])
    return IndexLevels(
        tuple(d.isoformat() for d in calendar),
        tuple(market),
        {name: tuple(levels) for name, levels in sectors.items()},
    )


def known_symbols(symbols: Sequence[str], *, session: Session) -> set[str]:
    """Which of ``symbols`` the market data knows (a bar or a row of reference data)."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return set()
    found = set(session.scalars(select(_info.symbol).where(_info.symbol.in_(wanted))))
    rest = [s for s in wanted if s not in found]
    if rest:
        found.update(
            session.scalars(
                select(_bars.symbol).where(_bars.symbol.in_(rest)).group_by(_bars.symbol)
            )
        )
    return found


def bars_between(
    symbols: Sequence[str], *, session: Session, first: dt.date, last: dt.date
) -> dict[str, Bars]:
    """Each symbol's bars from ``first`` to ``last`` inclusive (symbols without any absent):
    a chunk's reference symbols, over the span of its symbols' windows."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return {}
    rows = session.execute(
        select(
            _bars.symbol,
            _bars.date,
            cast(_bars.open, Float),
            cast(_bars.high, Float),
            cast(_bars.low, Float),
            cast(_bars.close, Float),
            _bars.volume,
        ).where(_bars.symbol.in_(wanted), _bars.date >= first, _bars.date <= last)
    ).all()
    per_symbol: dict[str, list[tuple[Any, ...]]] = {}
    for symbol, day, *values in sorted(rows, key=lambda r: (r[0], r[1])):
        per_symbol.setdefault(symbol, []).append((day.isoformat(), *values))
    out: dict[str, Bars] = {}
    for symbol, bars in per_symbol.items():
        dates, opens, highs, lows, closes, volumes = zip(*bars, strict=True)
        out[symbol] = Bars(dates, opens, highs, lows, closes, tuple(map(int, volumes)))
    return out
