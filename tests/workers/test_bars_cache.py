"""The per-process window cache: exact round trip, keyed by data version, bounded."""

from __future__ import annotations

from db.market_data import Bars, ChunkData, data_versions
from db.session import make_engine, session_scope
from workers.bars_cache import BarsCache, load_through, merge, window_keys


def bars(n: int, base: float) -> Bars:
    return Bars(
        tuple(f"2018-01-{i + 1:02d}" for i in range(n)),
        tuple(base + i + 0.25 for i in range(n)),
        tuple(base + i + 0.5 for i in range(n)),
        tuple(base + i for i in range(n)),
        tuple(base + i + 0.125 for i in range(n)),
        tuple(1000 + i for i in range(n)),
    )


def chunk(**series: Bars) -> ChunkData:
    info = {s: {"name": s.lower(), "sector": None, "industry": None} for s in series}
    return ChunkData(bars=dict(series), info=info, known=frozenset(series))


def test_windows_come_back_exactly_as_loaded():
    cache = BarsCache(max_bars=1000)
    loaded = chunk(AAA=bars(20, 10.0), BBB=bars(5, 99.5))
    keys = window_keys("db", {"AAA": 1, "BBB": 3}, ["AAA", "BBB"], "2018-01-31", 20)
    cache.remember(keys, loaded)
    found = cache.lookup(keys)
    assert set(found) == {"AAA", "BBB"}
    merged = merge(found, ChunkData(bars={}, info={}, known=frozenset()))
    assert {s: as_tuples(b) for s, b in merged.bars.items()} == loaded.bars
    assert merged.info == loaded.info
    assert all(type(x) is float for x in merged.bars["AAA"].close)
    assert all(type(x) is int for x in merged.bars["AAA"].volume)


def as_tuples(b: Bars) -> Bars:
    """The window as a script sees it (the cache hands it out packed)."""
    return Bars(b.dates, *(tuple(s) for s in (b.open, b.high, b.low, b.close, b.volume)))


def test_a_new_data_version_or_window_misses():
    cache = BarsCache(max_bars=1000)
    cache.remember(window_keys("db", {"AAA": 1}, ["AAA"], "2018-01-31", 20), chunk(AAA=bars(20, 1)))
    assert cache.lookup(window_keys("db", {"AAA": 2}, ["AAA"], "2018-01-31", 20)) == {}
    assert cache.lookup(window_keys("db", {"AAA": 1}, ["AAA"], "2018-01-30", 20)) == {}
    assert cache.lookup(window_keys("db", {"AAA": 1}, ["AAA"], "2018-01-31", 10)) == {}
    assert cache.lookup(window_keys("other", {"AAA": 1}, ["AAA"], "2018-01-31", 20)) == {}
    assert window_keys("db", {}, ["AAA"], "2018-01-31", 20) == {}  # no version: never cached


def test_the_least_recently_used_windows_go_first():
    cache = BarsCache(max_bars=50)
    for i, name in enumerate(["A", "B", "C"]):
        keys = window_keys("db", {name: 1}, [name], "d", 20)
        cache.remember(keys, chunk(**{name: bars(20, float(i))}))
        if name == "B":
            cache.lookup(window_keys("db", {"A": 1}, ["A"], "d", 20))  # A is used again
    assert len(cache) == 2
    assert set(
        cache.lookup(window_keys("db", {"A": 1, "B": 1, "C": 1}, ["A", "B", "C"], "d", 20))
    ) == {
        "A",
        "C",
    }


def test_windows_are_held_through_a_real_load_unless_the_job_would_outgrow_the_cache(
    sample_market_data,
):
    engine = make_engine(sample_market_data)
    cache = BarsCache(max_bars=10_000)
    symbols = ["AAPL", "MSFT"]
    try:
        with session_scope(engine) as session:
            versions = data_versions(symbols, session=session)
            args = {"session": session, "lookback": 50, "as_of": "2017-06-30"}
            passing = load_through(cache, "db", symbols, versions, **args, hold=False)
            assert len(passing.bars["AAPL"].dates) == 50 and len(cache) == 0
            held = load_through(cache, "db", symbols, versions, **args)
            assert len(cache) == 2
            again = load_through(cache, "db", symbols, versions, **args)
    finally:
        engine.dispose()
    for symbol in symbols:
        assert as_tuples(again.bars[symbol]) == as_tuples(held.bars[symbol])
        assert as_tuples(again.bars[symbol]) == passing.bars[symbol]
        assert passing.bars[symbol].dates[-1] <= "2017-06-30"
