"""The market-data queries workers run: a chunk's bars and reference data, in few round trips.

This is the hot path of every job (up to 5,000 symbols x 2,520 bars), so it reads with Core
selects, fetches plain rows and transposes them with ``zip``; no ORM objects are built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Select,
    String,
    and_,
    cast,
    column,
    func,
    select,
    type_coerce,
    values,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from db.models import StockDailyData, StockDataVersion, StockInfo

_bars = StockDailyData.__table__.c
_info = StockInfo.__table__.c
_versions = StockDataVersion.__table__.c
_NO_INFO = {"name": None, "sector": None, "industry": None}


@dataclass(frozen=True, slots=True)
class Bars:
    """One symbol's window, oldest first. Loaded as tuples (the shapes a script sees, API.md);
    a worker's window cache hands out packed arrays instead, which the sandbox sends to its
    child as they are and unpacks into tuples there."""

    dates: tuple[str, ...]
    open: Sequence[float]
    high: Sequence[float]
    low: Sequence[float]
    close: Sequence[float]
    volume: Sequence[int]


@dataclass(frozen=True, slots=True)
class ChunkData:
    """What a chunk needs: bars of the symbols that have some in the window, their reference
    data, and which symbols exist at all (so a missing one is NoData, not UnknownSymbol)."""

    bars: dict[str, Bars]
    info: dict[str, dict[str, Any]]
    known: frozenset[str]


def load_chunk(
    symbols: Sequence[str], *, session: Session, lookback: int, as_of: dt.date | None
) -> ChunkData:
    """The last ``lookback`` bars up to ``as_of`` (inclusive; None: the newest) per symbol.

    One query reads every symbol's bars, one reads their info, and a third runs only when some
    symbol has no bars in the window, to tell "known but no data" from "unknown".
    """
    if lookback < 1:
        raise ValueError(f"lookback must be at least 1, got {lookback}")
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return ChunkData(bars={}, info={}, known=frozenset())

    result = session.execute(_bars_query(wanted, session=session, lookback=lookback, as_of=as_of))
    try:
        # Plain tuples straight from the driver's cursor: no column here needs a result type
        # conversion, and wrapping 500k bars in Row objects cost a third of the load time.
        rows: list[tuple[Any, ...]] = result.cursor.fetchall()
    finally:
        result.close()
    # Sorted here, not in SQL: the rows arrive as per-symbol runs already in date order, which
    # Python's sort merges in linear time, while the database sorts the whole result (and
    # PostgreSQL, with the default work_mem, spills to disk on a large chunk). (symbol, date)
    # is unique, so the tuple comparison never reaches the prices.
    rows.sort()
    bars: dict[str, Bars] = {}
    for symbol, group in groupby(rows, key=itemgetter(0)):
        _, dates, opens, highs, lows, closes, volumes = zip(*group, strict=True)
        bars[symbol] = Bars(dates, opens, highs, lows, closes, volumes)

    info: dict[str, dict[str, Any]] = {
        symbol: {"name": name, "sector": sector, "industry": industry}
        for symbol, name, sector, industry in session.execute(
            select(_info.symbol, _info.name, _info.sector, _info.industry).where(
                _info.symbol.in_(wanted)
            )
        )
    }
    known = set(info) | set(bars)
    rest = [s for s in wanted if s not in known]
    if rest:
        # Only symbols without bars in the window get here (usually none): do they have any?
        known.update(
            session.scalars(
                select(_bars.symbol).where(_bars.symbol.in_(rest)).group_by(_bars.symbol)
            )
        )
    for symbol in bars:
        info.setdefault(symbol, dict(_NO_INFO))
    return ChunkData(bars=bars, info=info, known=frozenset(known))


def latest_date(*, session: Session, on_or_before: dt.date | None = None) -> dt.date | None:
    """The newest date with any bar (on or before ``on_or_before`` when given): a job's
    ``as_of`` as it runs, a Saturday's the Friday before (None when there is no such bar)."""
    query = select(func.max(_bars.date))
    if on_or_before is not None:
        query = query.where(_bars.date <= on_or_before)
    return session.scalar(query)


def data_versions(symbols: Sequence[str], *, session: Session) -> dict[str, int]:
    """Each symbol's data version (symbols never loaded are absent): a result-cache key part."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return {}
    rows = session.execute(
        select(_versions.symbol, _versions.version).where(_versions.symbol.in_(wanted))
    )
    return {symbol: version for symbol, version in rows}


def optional_data_versions(symbols: Sequence[str], *, session: Session) -> dict[str, int]:
    """Data versions, or none when the market database has no versions table (an external,
    read-only database): then nothing is cached, which is always correct. A savepoint keeps
    the failed query from spoiling the caller's transaction."""
    try:
        with session.begin_nested():
            return data_versions(symbols, session=session)
    except SQLAlchemyError:
        return {}


def _bars_query(
    symbols: list[str], *, session: Session, lookback: int, as_of: dt.date | None
) -> Select[Any]:
    """For each wanted symbol, find the date its window starts (one index probe that steps
    back ``lookback`` bars), then read the window as one index range.

    This reads only the rows it returns. The textbook ``ROW_NUMBER() OVER (PARTITION BY
    symbol ORDER BY date DESC) <= lookback`` reads and sorts each symbol's whole history
    before ``as_of``, and measured 2-3x slower on the sample (more on longer histories).
    """
    wanted = values(column("symbol", String), name="wanted").data([(s,) for s in symbols])
    wanted = wanted.cte("wanted")
    probe = StockDailyData.__table__.alias("probe")
    start = select(probe.c.date).where(probe.c.symbol == wanted.c.symbol)
    window = [_bars.symbol == wanted.c.symbol]
    if as_of is not None:
        start = start.where(probe.c.date <= as_of)
        window.append(_bars.date <= as_of)
    # No row at that offset: the symbol has fewer bars than asked for, so take them all.
    start = start.order_by(probe.c.date.desc()).limit(1).offset(lookback - 1).scalar_subquery()
    window.append(_bars.date >= func.coalesce(start, dt.date.min))
    return select(
        _bars.symbol,
        _date_text(session),
        # Casts are free on our own schema and turn NUMERIC prices (as another database
        # may hold them) into the floats and ints that scripts are promised.
        cast(_bars.open, Float),
        cast(_bars.high, Float),
        cast(_bars.low, Float),
        cast(_bars.close, Float),
        cast(_bars.volume, BigInteger),
    ).select_from(wanted.join(StockDailyData.__table__, and_(*window)))


def _date_text(session: Session) -> ColumnElement[str]:
    """The date as 'YYYY-MM-DD' text made by the database, saving a conversion per bar here."""
    if session.get_bind().dialect.name == "postgresql":
        # to_char, not ::text: the text form of a date follows the server's DateStyle.
        return func.to_char(_bars.date, "YYYY-MM-DD")
    # SQLite stores SQLAlchemy's Date as that very text; read it as is.
    return type_coerce(_bars.date, String)
