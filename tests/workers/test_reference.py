"""A chunk's reference series: aligned with each symbol's dates, against pandas on real data;
the index levels computed once per data version and shared through Redis."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest
import redis as redis_lib

from db.market_data import load_chunk
from db.market_index import data_version
from db.session import make_engine, session_scope
from sandbox.runner import SymbolInput
from tests.conftest import SAMPLE_PRICES, SAMPLE_STOCKS
from tests.db.test_market_index import pandas_index
from workers import reference
from workers.reference import attach, cached_index_levels, index_key, load_reference


@pytest.fixture(scope="module")
def frames():
    return pd.read_csv(SAMPLE_PRICES, dtype={"date": str}), pd.read_csv(SAMPLE_STOCKS)


@pytest.fixture
def engine(sample_market_data):
    made = make_engine(sample_market_data)
    yield made
    made.dispose()


@pytest.fixture
def client(redis_url):
    made = redis_lib.Redis.from_url(redis_url)
    yield made
    made.close()


@pytest.fixture(autouse=True)
def fresh_process_cache():
    reference._ProcessCache.levels.clear()
    yield
    reference._ProcessCache.levels.clear()


def inputs(symbols, *, engine, lookback, as_of):
    with session_scope(engine) as session:
        data = load_chunk(symbols, session=session, lookback=lookback, as_of=as_of)
    return [
        SymbolInput(s, b.dates, b.open, b.high, b.low, b.close, b.volume, data.info[s])
        for s, b in data.bars.items()
    ]


def test_reference_is_aligned_with_each_symbols_dates(engine, client, frames, sample_market_data):
    prices, stocks = frames
    items = inputs(["AAPL", "BHF", "XOM"], engine=engine, lookback=200, as_of=dt.date(2017, 12, 29))
    names = ["BHF", "@market", "MSFT", "@sector"]
    with session_scope(engine) as session:
        data = load_reference(
            names, items, session=session, client=client, database=sample_market_data
        )
    attached = {item.symbol: item for item in attach(items, data)}
    market = pandas_index(prices)
    sector_of = dict(zip(stocks["symbol"], stocks["sector"], strict=True))
    for symbol, item in attached.items():
        assert list(item.ref) == names  # in the job's order
        for ref_symbol in ("BHF", "MSFT"):
            bars = prices[prices["symbol"] == ref_symbol].set_index("date")
            for name in ("open", "high", "low", "close", "volume"):
                expected = tuple(
                    bars[name].get(d).item() if d in bars.index else None for d in item.dates
                )
                assert item.ref[ref_symbol][name] == expected, (symbol, ref_symbol, name)
        assert item.ref["@market"] == {"close": pytest.approx(tuple(market[list(item.dates)]))}
        members = set(stocks[stocks["sector"] == sector_of[symbol]]["symbol"])
        sector = pandas_index(prices[prices["symbol"].isin(members)])
        sector = sector.reindex(sorted(prices["date"].unique())).ffill()
        # (pandas_index over the sector's own calendar; on the market's, the level carries.)
        got = item.ref["@sector"]["close"]
        assert got == pytest.approx(tuple(sector[list(item.dates)]), rel=1e-11)
    bhf = attached["AAPL"].ref["BHF"]["close"]
    assert bhf[0] is None and bhf[-1] is not None  # BHF trades from 2017-07-17 only
    assert len(attached["BHF"].dates) < len(attached["AAPL"].dates)
    # Symbols sharing their window share one mapping (written once to the child).
    assert attached["AAPL"].ref["@market"] is attached["XOM"].ref["@market"]


def test_a_symbol_without_a_sector_gets_none_throughout(engine, client, sample_market_data):
    (item,) = inputs(["AAPL"], engine=engine, lookback=30, as_of=None)
    item = SymbolInput(
        item.symbol, item.dates, item.open, item.high, item.low, item.close, item.volume,
        {"name": None, "sector": None, "industry": None},
    )  # fmt: skip
    with session_scope(engine) as session:
        data = load_reference(
            ["@sector"], [item], session=session, client=client, database=sample_market_data
        )
    (attached,) = attach([item], data)
    assert attached.ref == {"@sector": {"close": (None,) * 30}}


def test_levels_are_computed_once_per_data_version_and_shared(engine, client, sample_market_data):
    with session_scope(engine) as session:
        version = data_version(session=session)
        first = cached_index_levels(session=session, client=client, database=sample_market_data)
    key = index_key(sample_market_data, version)
    assert client.exists(key) and not client.exists(f"{key}:lock")
    # Another process (an empty process cache) reads Redis's copy: the same levels exactly.
    reference._ProcessCache.levels.clear()
    with session_scope(engine) as session:
        again = cached_index_levels(session=session, client=client, database=sample_market_data)
    assert again == first
    assert all(math.isfinite(x) for x in again.market)
    # A stored copy is what is used (not recomputed): doctor it and see it come back.
    reference._ProcessCache.levels.clear()
    doctored = first.to_json() | {"market": [1.0] * len(first.dates)}
    client.set(key, json.dumps(doctored))
    with session_scope(engine) as session:
        used = cached_index_levels(session=session, client=client, database=sample_market_data)
    assert used.market == (1.0,) * len(first.dates)
