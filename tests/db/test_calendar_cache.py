"""A universe's calendar, kept in Redis per market-data version (workers/calendar_cache.py),
on each database kind: read once, the same dates again, and read anew once a bar changes."""

from __future__ import annotations

import redis as redis_lib

from db.loader import load_prices_csv
from db.session import session_scope
from workers import calendar_cache
from workers.calendar_cache import job_calendar

PRICES = """symbol,date,open,high,low,close,volume
AAA,2020-01-02,10,10,10,10,100
AAA,2020-01-03,11,11,11,11,100
BBB,2020-01-06,22,22,22,22,100
CCC,2020-01-08,5,5,5,5,100
"""


def test_a_universe_calendar_is_read_once_per_data_version(
    fresh_engine, redis_client, tmp_path, monkeypatch
):
    prices = tmp_path / "prices.csv"
    prices.write_text(PRICES)
    with session_scope(fresh_engine) as session:
        load_prices_csv(prices, session=session)
    reads: list[list[str]] = []
    read = calendar_cache.trading_calendar

    def counting(symbols, *, session):
        reads.append(list(symbols))
        return read(symbols, session=session)

    monkeypatch.setattr(calendar_cache, "trading_calendar", counting)
    days = ["2020-01-02", "2020-01-03", "2020-01-06"]
    with session_scope(fresh_engine) as session:
        assert job_calendar(redis_client, ["AAA", "BBB"], session=session) == days
        same_set = ["BBB", "AAA", "AAA"]
        assert job_calendar(redis_client, same_set, session=session) == days
        assert job_calendar(redis_client, ["AAA", "CCC"], session=session)[-1] == "2020-01-08"
    assert reads == [["AAA", "BBB"], ["AAA", "CCC"]]

    prices.write_text(PRICES + "BBB,2020-01-09,23,23,23,23,100\n")  # a new bar: a new version
    with session_scope(fresh_engine) as session:
        load_prices_csv(prices, session=session)
    with session_scope(fresh_engine) as session:
        assert job_calendar(redis_client, ["AAA", "BBB"], session=session) == [*days, "2020-01-09"]
    assert len(reads) == 3


def test_without_redis_the_calendar_comes_from_the_database(fresh_engine, tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text(PRICES)
    with session_scope(fresh_engine) as session:
        load_prices_csv(prices, session=session)
    away = redis_lib.Redis(port=1, socket_connect_timeout=0.5)
    with session_scope(fresh_engine) as session:
        assert job_calendar(away, ["AAA", "BBB"], session=session)[0] == "2020-01-02"
