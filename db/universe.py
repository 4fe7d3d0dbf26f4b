"""The symbols the market data holds, with their sectors: the page's universe choices."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import StockDailyData, StockInfo


@dataclass(frozen=True)
class UniverseSymbol:
    symbol: str
    name: str | None
    sector: str | None


@dataclass(frozen=True)
class Universe:
    symbols: list[UniverseSymbol]
    first_date: str | None
    last_date: str | None


def load_universe(*, session: Session) -> Universe:
    """Every symbol with at least one bar (sorted), its name and sector where the reference
    table has them, and the first and last date of the data (the page's date defaults)."""
    with_bars = select(StockDailyData.symbol).group_by(StockDailyData.symbol).subquery()
    rows = session.execute(
        select(with_bars.c.symbol, StockInfo.name, StockInfo.sector)
        .outerjoin(StockInfo, StockInfo.symbol == with_bars.c.symbol)
        .order_by(with_bars.c.symbol)
    )
    first, last = session.execute(
        select(func.min(StockDailyData.date), func.max(StockDailyData.date))
    ).one()
    return Universe(
        symbols=[UniverseSymbol(symbol, name, sector) for symbol, name, sector in rows],
        first_date=first.isoformat() if first else None,
        last_date=last.isoformat() if last else None,
    )
