"""load_chunk and friends against the real sample data, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from db.loader import load_prices_csv, load_stocks_csv
from db.market_data import Bars, ChunkData, data_versions, latest_date, load_chunk
from db.session import make_engine, session_scope
from tests.conftest import SAMPLE_PRICES

Csv = dict[str, list[tuple[str, float, float, float, float, int]]]


@pytest.fixture(scope="module")
def sample_csv() -> Csv:
    """The sample's bars read straight from the file, per symbol, oldest first."""
    bars: Csv = defaultdict(list)
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as text:
        for row in csv.DictReader(text):
            bars[row["symbol"]].append(
                (
                    row["date"],
                    float(row["open"]),
                    float(row["high"]),
                    float(row["low"]),
                    float(row["close"]),
                    int(row["volume"]),
                )
            )
    return {symbol: sorted(rows) for symbol, rows in bars.items()}


@pytest.fixture
def sample_session(sample_market_data: str) -> Iterator[Session]:
    engine = make_engine(sample_market_data)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _as_rows(bars: Bars) -> list[tuple[str, float, float, float, float, int]]:
    return list(
        zip(bars.dates, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True)
    )


def test_every_bar_equals_the_csv(sample_session: Session, sample_csv: Csv) -> None:
    chunk = load_chunk(list(sample_csv), session=sample_session, lookback=2520, as_of=None)
    assert set(chunk.bars) == set(sample_csv)
    for symbol, rows in sample_csv.items():
        assert _as_rows(chunk.bars[symbol]) == rows, symbol
    bars = chunk.bars["AAPL"]
    assert isinstance(bars.dates, tuple) and isinstance(bars.dates[0], str)
    assert all(type(v) is float for v in bars.close) and all(type(v) is int for v in bars.volume)


def test_lookback_keeps_the_newest_bars_oldest_first(
    sample_session: Session, sample_csv: Csv
) -> None:
    chunk = load_chunk(["AAPL", "MSFT"], session=sample_session, lookback=5, as_of=None)
    for symbol in ("AAPL", "MSFT"):
        assert _as_rows(chunk.bars[symbol]) == sample_csv[symbol][-5:]
    assert chunk.bars["AAPL"].dates[-1] == "2018-02-07"


@pytest.mark.parametrize("as_of", [dt.date(2016, 6, 15), dt.date(2016, 6, 18)])  # a Wed, a Sat
def test_as_of_is_the_last_date_included(
    sample_session: Session, sample_csv: Csv, as_of: dt.date
) -> None:
    chunk = load_chunk(["AAPL"], session=sample_session, lookback=20, as_of=as_of)
    expected = [r for r in sample_csv["AAPL"] if r[0] <= as_of.isoformat()][-20:]
    assert _as_rows(chunk.bars["AAPL"]) == expected
    assert len(expected) == 20


def test_a_short_history_gives_what_there_is(sample_session: Session, sample_csv: Csv) -> None:
    first_day = dt.date.fromisoformat(sample_csv["AAPL"][0][0])
    chunk = load_chunk(
        ["AAPL"], session=sample_session, lookback=252, as_of=first_day + dt.timedelta(days=6)
    )
    assert 1 <= len(chunk.bars["AAPL"].dates) <= 5


def test_unknown_symbols_and_known_symbols_without_bars(sample_session: Session) -> None:
    before_the_data = dt.date(2015, 1, 2)
    chunk = load_chunk(
        ["AAPL", "NOPE", "MSFT"], session=sample_session, lookback=10, as_of=before_the_data
    )
    assert chunk.bars == {}
    assert chunk.known == {"AAPL", "MSFT"}

    chunk = load_chunk(["AAPL", "NOPE"], session=sample_session, lookback=10, as_of=None)
    assert set(chunk.bars) == {"AAPL"} and chunk.known == {"AAPL"}
    assert chunk.info["AAPL"] == {
        "name": "Apple Inc.",
        "sector": "Information Technology",
        "industry": "Technology Hardware, Storage & Peripherals",
    }
    assert "NOPE" not in chunk.info


def test_bars_are_read_with_one_query(sample_market_data: str, sample_csv: Csv) -> None:
    engine = make_engine(sample_market_data)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        with session_scope(engine) as session:
            chunk = load_chunk(list(sample_csv)[:300], session=session, lookback=252, as_of=None)
    finally:
        engine.dispose()
    assert len(chunk.bars) == 300
    assert sum("stock_daily_data" in sql for sql in statements) == 1
    assert sum("stock_info" in sql for sql in statements) == 1
    assert len(statements) == 2  # nothing else: no per-symbol queries, no "known" check


def test_duplicates_and_empty_input(sample_session: Session) -> None:
    chunk = load_chunk(["AAPL", "AAPL"], session=sample_session, lookback=3, as_of=None)
    assert len(chunk.bars["AAPL"].dates) == 3
    assert load_chunk([], session=sample_session, lookback=3, as_of=None) == ChunkData(
        {}, {}, frozenset()
    )
    with pytest.raises(ValueError, match="lookback"):
        load_chunk(["AAPL"], session=sample_session, lookback=0, as_of=None)


def test_latest_date_and_versions(sample_session: Session) -> None:
    assert latest_date(session=sample_session) == dt.date(2018, 2, 7)
    versions = data_versions(["AAPL", "MSFT", "NOPE"], session=sample_session)
    assert set(versions) == {"AAPL", "MSFT"} and all(v >= 1 for v in versions.values())
    assert data_versions([], session=sample_session) == {}


def test_symbols_with_bars_but_no_info_and_info_but_no_bars(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    prices = tmp_path / "p.csv"
    prices.write_text("symbol,date,open,high,low,close,volume\nBARS,2024-01-02,1,2,1,1.5,10\n")
    stocks = tmp_path / "s.csv"
    stocks.write_text("symbol,name,sector,industry\nINFO,Info Only,Energy,Oil\n")
    with session_scope(fresh_engine) as session:
        assert latest_date(session=session) is None
        load_prices_csv(prices, session=session)
        load_stocks_csv(stocks, session=session)
    with session_scope(fresh_engine) as session:
        chunk = load_chunk(["BARS", "INFO", "NONE"], session=session, lookback=5, as_of=None)
        assert latest_date(session=session) == dt.date(2024, 1, 2)
    assert set(chunk.bars) == {"BARS"}
    assert chunk.known == {"BARS", "INFO"}
    assert chunk.info["BARS"] == {"name": None, "sector": None, "industry": None}
    assert chunk.info["INFO"]["name"] == "Info Only"
    assert chunk.bars["BARS"] == Bars(("2024-01-02",), (1.0,), (2.0,), (1.0,), (1.5,), (10,))
