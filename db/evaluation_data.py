"""The market-data queries of an evaluation: its calendar, each symbol's history, the closes.

An evaluation runs a script at many dates; it reads each symbol's bars once for all of them
(the sandbox slices each date's window), and the closes past its last rebalance date for the
forward returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, String, and_, cast, column, select, values
from sqlalchemy.orm import Session

from db.market_data import _date_text
from db.models import StockDailyData, StockInfo

_bars = StockDailyData.__table__.c
_info = StockInfo.__table__.c


def _wanted(symbols: Sequence[str]):
    rows = [(s,) for s in dict.fromkeys(symbols)]
    return values(column("symbol", String), name="wanted").data(rows).cte("wanted")


def trading_calendar(symbols: Sequence[str], *, session: Session) -> list[str]:
    """The sorted dates ('YYYY-MM-DD') on which any of ``symbols`` has a bar (API.md's
    calendar of an evaluation)."""
    if not symbols:
        return []
    wanted = _wanted(symbols)
    day = _date_text(session)
    query = (
        select(day)
        .select_from(wanted.join(StockDailyData.__table__, _bars.symbol == wanted.c.symbol))
        .group_by(day)
        .order_by(day)
    )
    return list(session.scalars(query))


def load_closes(
    symbols: Sequence[str],
    *,
    session: Session,
    last: dt.date | None = None,
    after: dt.date | None = None,
) -> list[tuple[str, str, float]]:
    """Every (symbol, date, close) of ``symbols`` after ``after`` up to ``last`` (None: no
    bound), unsorted: the forward returns of an evaluation (a chunk reads those after its
    last rebalance date; its bars hold the rest)."""
    if not symbols:
        return []
    wanted = _wanted(symbols)
    where: list[Any] = [_bars.symbol == wanted.c.symbol]
    if last is not None:
        where.append(_bars.date <= last)
    if after is not None:
        where.append(_bars.date > after)
    query = select(_bars.symbol, _date_text(session), cast(_bars.close, Float)).select_from(
        wanted.join(StockDailyData.__table__, and_(*where))
    )
    result = session.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def load_sectors(symbols: Sequence[str], *, session: Session) -> dict[str, str | None]:
    """Each symbol's sector (``info.sector``; absent or None when it has none)."""
    if not symbols:
        return {}
    query = select(_info.symbol, _info.sector).where(_info.symbol.in_(list(dict.fromkeys(symbols))))
    return dict(session.execute(query).all())
