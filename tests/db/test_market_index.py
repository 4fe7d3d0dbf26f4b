"""The built-in reference indices against an independent pandas computation on real data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from db.loader import load_prices_csv, load_stocks_csv
from db.market_index import bars_between, data_version, index_levels, known_symbols
from db.session import make_engine, session_scope
from tests.conftest import SAMPLE_PRICES, SAMPLE_STOCKS


def pandas_index(prices: pd.DataFrame) -> pd.Series:
    """API.md's definition, read plainly: on the calendar of ``prices``, the mean over symbols
    of close / close on the previous calendar date - 1 (both bars needed), compounded from 100."""
    wide = prices.pivot(index="date", columns="symbol", values="close").sort_index()
    mean_return = (wide / wide.shift(1) - 1).mean(axis=1, skipna=True).fillna(0.0)
    mean_return.iloc[0] = 0.0
    return 100.0 * (1.0 + mean_return).cumprod()


@pytest.fixture(scope="module")
def sample_frames():
    prices = pd.read_csv(SAMPLE_PRICES, dtype={"date": str})
    stocks = pd.read_csv(SAMPLE_STOCKS)
    return prices, stocks


@pytest.fixture
def levels(sample_market_data):
    engine = make_engine(sample_market_data)
    try:
        with session_scope(engine) as session:
            yield index_levels(session=session)
    finally:
        engine.dispose()


def test_market_index_matches_pandas(levels, sample_frames):
    prices, _ = sample_frames
    expected = pandas_index(prices)
    assert levels.dates == tuple(expected.index)
    assert levels.market[0] == 100.0
    assert levels.market == pytest.approx(tuple(expected), rel=1e-11)


def test_every_sector_index_matches_pandas(levels, sample_frames):
    prices, stocks = sample_frames
    calendar = pd.Index(sorted(prices["date"].unique()))
    sectors = stocks.dropna(subset=["sector"]).groupby("sector")["symbol"].apply(set)
    assert set(levels.sectors) == set(sectors.index)
    for sector, members in sectors.items():
        mine = prices[prices["symbol"].isin(members)]
        # The sector's index is on the whole market's calendar (dates when only other
        # sectors trade keep its level).
        wide = mine.pivot(index="date", columns="symbol", values="close").reindex(calendar)
        r = (wide / wide.shift(1) - 1).mean(axis=1, skipna=True).fillna(0.0)
        expected = 100.0 * (1.0 + r).cumprod()
        assert levels.sectors[sector] == pytest.approx(tuple(expected), rel=1e-11), sector


def test_levels_are_point_in_time(levels, sample_frames):
    """The level on a date is what the data up to that date alone gives."""
    prices, _ = sample_frames
    cut = "2016-06-30"
    early = pandas_index(prices[prices["date"] <= cut])
    assert levels.market[: len(early)] == pytest.approx(tuple(early), rel=1e-11)
    assert levels.dates[len(early) - 1] == cut


def test_reference_bars_and_known_symbols(sample_market_data, sample_frames):
    prices, _ = sample_frames
    engine = make_engine(sample_market_data)
    try:
        with session_scope(engine) as session:
            assert known_symbols(["AAPL", "NOPE", "MSFT"], session=session) == {"AAPL", "MSFT"}
            got = bars_between(
                ["AAPL", "NOPE"],
                session=session,
                first=dt.date(2017, 1, 3),
                last=dt.date(2017, 1, 31),
            )
    finally:
        engine.dispose()
    assert set(got) == {"AAPL"}
    aapl = prices[(prices["symbol"] == "AAPL") & prices["date"].between("2017-01-03", "2017-01-31")]
    assert got["AAPL"].dates == tuple(aapl["date"])
    assert got["AAPL"].close == tuple(aapl["close"])
    assert got["AAPL"].volume == tuple(aapl["volume"])


PRICES = """symbol,date,open,high,low,close,volume
AAA,2020-01-02,10,10,10,10,100
AAA,2020-01-03,11,11,11,11,100
BBB,2020-01-03,20,20,20,20,100
BBB,2020-01-06,22,22,22,22,100
AAA,2020-01-07,12,12,12,12,100
BBB,2020-01-07,11,11,11,11,100
"""


def test_levels_by_hand_and_a_load_that_changes_a_bar_changes_the_version(fresh_engine, tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text(PRICES)
    stocks = tmp_path / "stocks.csv"
    stocks.write_text("symbol,name,sector,industry\nAAA,A,Tech,x\nBBB,B,,x\n")
    with session_scope(fresh_engine) as session:
        assert data_version(session=session) is None  # nothing loaded yet
        load_stocks_csv(stocks, session=session)
        load_prices_csv(prices, session=session)
    with session_scope(fresh_engine) as session:
        first = data_version(session=session)
        levels = index_levels(session=session)
    assert levels.dates == ("2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07")
    # 01-03: AAA +10% (BBB has no bar before); 01-06: BBB +10% (AAA has no bar);
    # 01-07: AAA has no bar on 01-06, so BBB alone, -50%. Tech is AAA alone; BBB has no sector.
    assert levels.market == pytest.approx((100.0, 110.0, 121.0, 60.5))
    assert levels.sectors == {"Tech": pytest.approx((100.0, 110.0, 110.0, 110.0))}

    with session_scope(fresh_engine) as session:  # the same file again: nothing changes
        load_prices_csv(prices, session=session)
    with session_scope(fresh_engine) as session:
        assert data_version(session=session) == first
    prices.write_text(PRICES.replace("BBB,2020-01-07,11,11,11,11", "BBB,2020-01-07,33,33,33,33"))
    with session_scope(fresh_engine) as session:
        load_prices_csv(prices, session=session)
    with session_scope(fresh_engine) as session:
        assert data_version(session=session) > first
        assert index_levels(session=session).market[-1] == pytest.approx(181.5)
