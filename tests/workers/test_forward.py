"""Forward returns (API.md) one symbol at a time: each evaluation chunk works out its own
symbols' from its bars and the closes after them, and the job's end must get exactly what the
definition gives over every close of every symbol."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

from tests.workers.test_figures import market
from workers.evaluation_plan import plan_dates
from workers.forward import ForwardReturns, forward_returns


def test_forward_returns_carry_the_last_close_forward_and_stop_at_the_calendar_end():
    closes = [
        ("A", "2020-01-01", 10.0),
        ("A", "2020-01-03", 12.0),
        ("B", "2020-01-01", 5.0),
        ("B", "2020-01-02", 6.0),
        ("B", "2020-01-03", 3.0),
        ("C", "2020-01-02", 4.0),
        ("C", "2020-01-03", 5.0),
    ]
    fwd = forward_returns(closes, ["2020-01-01", "2020-01-02"], (1, 2))
    # A has no bar on the 2nd: its close of the 1st carries forward.
    assert fwd[1].loc["2020-01-01", "A"] == 10.0 / 10.0 - 1
    assert fwd[1].loc["2020-01-02", "A"] == 12.0 / 10.0 - 1
    assert fwd[2].loc["2020-01-01", "B"] == 3.0 / 5.0 - 1
    assert math.isnan(fwd[1].loc["2020-01-01", "C"])  # no close on or before the 1st
    assert math.isnan(fwd[2].loc["2020-01-02", "B"])  # past the calendar's end


def test_forward_returns_do_not_depend_on_the_order_of_the_closes_and_skip_a_missing_close():
    closes = [
        ("B", "2020-01-03", 3.0),
        ("A", "2020-01-02", None),  # a bar without a close: A's close of the 1st carries on
        ("B", "2020-01-01", 5.0),
        ("A", "2020-01-03", 12.0),
        ("B", "2020-01-02", 6.0),
        ("A", "2020-01-01", 10.0),
    ]
    fwd = forward_returns(closes, ["2020-01-01", "2020-01-02"], (1,))
    shuffled = forward_returns(list(reversed(closes)), ["2020-01-01", "2020-01-02"], (1,))
    pd.testing.assert_frame_equal(fwd[1], shuffled[1])
    assert list(fwd[1].columns) == ["A", "B"]
    assert fwd[1].loc["2020-01-01", "A"] == 0.0
    assert fwd[1].loc["2020-01-02", "A"] == 12.0 / 10.0 - 1
    assert fwd[1].loc["2020-01-01", "B"] == 6.0 / 5.0 - 1
    assert fwd[1].loc["2020-01-02", "B"] == 3.0 / 6.0 - 1
    assert forward_returns([], ["2020-01-01"], (1,))[1].empty


def test_chunks_working_out_their_own_symbols_give_what_every_close_gives():
    """Real closes with holes and late listings, split into chunks as the workers split them:
    each chunk has its symbols' last bars up to the last rebalance date (as ``load_chunk``
    loads them) and the closes after it; together they equal the definition over every
    close of every symbol, bit for bit, for horizons that reach past the calendar's end."""
    bars, _ = market()
    rng = np.random.default_rng(5)
    names = sorted(bars["symbol"].unique())
    chosen = list(rng.choice(names, size=24, replace=False))
    data = bars[bars["symbol"].isin(chosen) & (bars["date"] >= "2015-01-01")]
    data = data[data["date"] <= "2017-12-29"]
    late = chosen[:2]  # listed late: no bar before mid-2016, none at the first dates
    data = data[~(data["symbol"].isin(late) & (data["date"] < "2016-07-01"))]
    data = data[rng.random(len(data)) > 0.03]  # missing bars
    rows = list(data.itertuples(index=False, name=None))
    calendar = sorted(data["date"].unique())
    horizons = [1, 5, 21, 63]
    plan = plan_dates(
        calendar,
        start=date(2016, 1, 4),
        end=date(2017, 11, 1),
        every=5,
        lookback=60,
        horizons=horizons,
        symbols=len(chosen),
    )
    upto = [r for r in rows if r[1] <= plan.until]
    expected = forward_returns(upto, plan.dates, horizons)

    forward = ForwardReturns(plan.calendar, plan.dates, horizons)
    got: dict[str, np.ndarray] = {}
    last = plan.dates[-1]
    for chunk in np.array_split(np.array(chosen, dtype=object), 4):
        series = {}
        for symbol in chunk:
            own = sorted((d, c) for s, d, c in rows if s == symbol and d <= last)
            own = own[-plan.history_bars :]  # load_chunk: the last history_bars bars
            series[symbol] = ([d for d, _ in own], [c for _, c in own])
        later = [r for r in upto if r[0] in set(chunk) and r[1] > last]
        returns = forward.of_series(series, later, list(chunk))
        got.update({s: forward.unpack(forward.pack(r)) for s, r in returns.items()})
    tables = forward.tables(got, sorted(chosen))
    for h in horizons:
        pd.testing.assert_frame_equal(tables[h], expected[h].reindex(columns=sorted(chosen)))
        assert np.isfinite(tables[h].to_numpy()).any()
    assert tables[1][late[0]].isna().iloc[0]  # not listed yet at the first rebalance date
    assert tables[63].iloc[-1].isna().all()  # past the calendar's end


def test_a_symbol_without_closes_has_no_forward_returns_and_a_wrong_shape_is_refused():
    forward = ForwardReturns(["2020-01-01", "2020-01-02", "2020-01-03"], ["2020-01-01"], [1, 2])
    none = forward.of_series({}, [], ["A"])["A"]
    assert none.shape == (2, 1) and np.isnan(none).all()
    later_only = forward.of_series({}, [("A", "2020-01-02", 3.0)], ["A"])["A"]
    assert np.isnan(later_only).all()  # no close on or before the rebalance date
    carried = forward.of_series({"A": (["2019-12-30"], [2.0])}, [("A", "2020-01-03", 3.0)], ["A"])
    assert carried["A"].tolist() == [[0.0], [0.5]]  # the 30th's close carries over the 1st and 2nd
    assert forward.unpack(b"\0" * 8) is None
    assert forward.unpack(b"\0" * 15) is None  # not even whole numbers
    off = ForwardReturns(["2020-01-01", "2020-01-03"], ["2020-01-02"], [1])
    assert np.isnan(off.of(["2020-01-01", "2020-01-03"], [1.0, 2.0])).all()  # not a calendar date
