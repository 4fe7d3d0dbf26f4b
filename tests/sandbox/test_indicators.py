"""The indicator and pair helpers against independent references on real daily bars.

TA-Lib (the C library, through its Python wrapper) for ``true_range`` and ``atr``; pandas for
``corr``, ``beta``, ``ts_rank``, ``log_returns`` and ``shift``; ``statistics`` for
``pstdev``; and for ``macd`` a plain-Python reading of TradingView's Pine definitions
(``ta.ema``: seeded by ``ta.sma`` once ``length`` values exist, then ``alpha * src + (1 -
alpha) * ema[1]``; ``ta.macd``: the line, its ``ta.ema``, their difference). Several windows,
the first defined values, and ``None``s inside (a missing bar).
"""

from __future__ import annotations

import csv
import gzip
import math
import statistics
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from sandbox import helpers
from sandbox.helpers import pstdev, returns
from sandbox.history import MAX_WARNINGS, take_warnings
from sandbox.indicators import atr, beta, corr, log_returns, macd, shift, true_range, ts_rank

SAMPLE_PRICES = Path(__file__).resolve().parents[2] / "data" / "sample" / "prices.csv.gz"
SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "DWDP"]  # DWDP: 107 bars, shorter than some windows
WINDOWS = [1, 2, 5, 14, 20, 63, 200]
GAPS = (30, 31, 95, 180)  # bars missing (every field None) in the "with gaps" variants
REL = 1e-9


@cache
def _bars() -> dict[str, dict[str, list]]:
    bars: dict[str, list[tuple]] = {s: [] for s in SYMBOLS}
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["symbol"] in bars:
                fields = (float(row[k]) for k in ("open", "high", "low", "close"))
                bars[row["symbol"]].append((row["date"], *fields))
    out = {}
    for symbol, rows in bars.items():
        rows.sort()
        out[symbol] = {
            "dates": [r[0] for r in rows],
            "high": [r[2] for r in rows],
            "low": [r[3] for r in rows],
            "close": [r[4] for r in rows],
        }
    return out


def series(symbol: str, field: str, gaps: bool = False) -> list[float | None]:
    values: list[float | None] = list(_bars()[symbol][field])
    if gaps:
        for i in GAPS:
            if i < len(values):
                values[i] = None
    return values


def nan(xs: Sequence[float | None]) -> pd.Series:
    return pd.Series([math.nan if x is None else x for x in xs], dtype=float)


def none(values: object) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def assert_series(got: object, want: Sequence[float | None], rel: float = REL) -> None:
    """Same length, None exactly where expected, numbers within ``rel`` (or 1e-12 absolute)."""
    assert isinstance(got, tuple)
    assert len(got) == len(want)
    assert [g is None for g in got] == [w is None for w in want]
    numbers = [g for g in got if g is not None]
    assert all(type(g) is float for g in numbers)
    assert numbers == pytest.approx([w for w in want if w is not None], rel=rel, abs=1e-12)


def ohlc(symbol: str, gaps: bool = False) -> tuple[list, list, list]:
    return series(symbol, "high", gaps), series(symbol, "low", gaps), series(symbol, "close", gaps)


def talib_by_segments(fn, high: list, low: list, close: list, **kwargs) -> list[float | None]:
    """TA-Lib over each stretch of whole bars between missing ones (TA-Lib has no notion of a
    missing bar; API.md's helpers restart after one), None at the missing bars."""
    out: list[float | None] = [None] * len(close)
    start = 0
    for end in [*(i for i, c in enumerate(close) if c is None), len(close)]:
        if end > start:
            part = [np.array(v[start:end], dtype=float) for v in (high, low, close)]
            out[start:end] = none(fn(*part, **kwargs))
        start = end + 1
    return out


# --- true_range and atr against TA-Lib -----------------------------------------------------------


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_true_range_is_talib_trange(symbol: str, gaps: bool) -> None:
    h, lo, c = ohlc(symbol, gaps)
    got = true_range(h, lo, c)
    assert_series(got, talib_by_segments(talib.TRANGE, h, lo, c), rel=1e-12)
    assert got[0] is None and got[1] is not None


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_atr_is_talib_atr(symbol: str, n: int, gaps: bool) -> None:
    h, lo, c = ohlc(symbol, gaps)
    got = atr(h, lo, c, n)
    assert_series(got, talib_by_segments(talib.ATR, h, lo, c, timeperiod=n))
    if n < len(c) and not gaps:
        # First value at index n: the mean of the true ranges at 1..n.
        assert got[n - 1] is None and got[n] is not None
        tr = true_range(h, lo, c)
        assert got[n] == pytest.approx(math.fsum(tr[1 : n + 1]) / n, rel=1e-12)


def test_atr_default_window_is_14() -> None:
    h, lo, c = ohlc("AAPL")
    assert atr(h, lo, c) == atr(h, lo, c, 14)


def test_bars_must_align() -> None:
    with pytest.raises(ValueError, match="same length"):
        true_range([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(TypeError, match="atr"):
        atr([1.0], [1.0], ["x"])


# --- corr, beta, ts_rank, log_returns and shift against pandas ---------------------------------


def _returns_pair(gaps: bool) -> tuple[list, list]:
    """Daily returns of AAPL and of an equal-weighted mean of the others, on AAPL's dates."""
    dates = _bars()["AAPL"]["dates"]
    by_date = {
        s: dict(zip(_bars()[s]["dates"], _bars()[s]["close"], strict=True)) for s in SYMBOLS[1:4]
    }
    market = [statistics.fmean(by_date[s][d] for s in by_date) for d in dates]
    return list(returns(series("AAPL", "close", gaps))), list(returns(market))


@pytest.mark.parametrize("n", [2, 5, 20, 63, 252])
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_corr_is_pandas_rolling_corr(n: int, gaps: bool) -> None:
    x, y = _returns_pair(gaps)
    want = none(nan(x).rolling(n).corr(nan(y)))
    got = corr(x, y, n)
    assert_series(got, want, rel=1e-8)
    assert got[n] is not None or gaps  # the first window is the first full one after returns' None


@pytest.mark.parametrize("n", [2, 5, 20, 63, 252])
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_beta_is_pandas_rolling_cov_over_var(n: int, gaps: bool) -> None:
    x, y = _returns_pair(gaps)
    want = none(nan(x).rolling(n).cov(nan(y)) / nan(y).rolling(n).var())
    assert_series(beta(x, y, n), want, rel=1e-8)


def test_beta_of_prices_on_themselves_is_one_and_corr_of_a_negation_minus_one() -> None:
    c = series("MSFT", "close")
    assert all(b == pytest.approx(1.0, rel=1e-9) for b in beta(c, c, 20)[19:])
    assert all(r == pytest.approx(-1.0, abs=1e-12) for r in corr(c, [-v for v in c], 20)[19:])


def test_constant_windows_and_nones_give_none() -> None:
    flat = [1.0] * 5 + [1.0, 2.0, 3.0, 2.0, 5.0]
    other = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]
    got = corr(flat, other, 5)
    assert got[:6] == (None,) * 6  # the first 4, then two windows of 1.0 only
    assert None not in got[6:]  # from 1, 1, 1, 1, 2 on: not constant
    assert beta(other, flat, 5)[4] is None  # var(y) == 0
    assert beta(flat, other, 5)[4] is None  # "None as for corr": either side constant
    assert corr([1.0, None, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], 2) == (None, None, None, 1.0)
    assert corr([1.0, 2.0], [1.0, 2.0], 1) == (None, None)


def test_pairs_must_align() -> None:
    with pytest.raises(ValueError, match="corr: xs and ys must have the same length"):
        corr([1.0, 2.0], [1.0], 2)
    with pytest.raises(TypeError, match="beta: n must be an int"):
        beta([1.0, 2.0], [1.0, 2.0], 2.0)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_ts_rank_is_pandas_rolling_rank_pct(symbol: str, n: int, gaps: bool) -> None:
    c = series(symbol, "close", gaps)
    want = none(nan(c).rolling(n).rank(pct=True))
    got = ts_rank(c, n)
    assert_series(got, want, rel=1e-12)
    if n <= len(c) and not gaps:
        assert got[n - 2] is None if n > 1 else True
        assert got[n - 1] is not None


def test_ts_rank_averages_ties() -> None:
    xs = [3.0, 1.0, 3.0, 3.0, 2.0, 2.0]
    want = none(pd.Series(xs).rolling(4).rank(pct=True))
    assert ts_rank(xs, 4) == tuple(want)
    assert ts_rank([5, 5, 5], 3) == (None, None, 2 / 3)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_log_returns_are_pandas_log_of_ratio(symbol: str, gaps: bool) -> None:
    c = series(symbol, "close", gaps)
    s = nan(c)
    want = none(np.log(s / s.shift(1)))
    assert_series(log_returns(c), want, rel=1e-12)


def test_log_returns_skip_values_that_are_not_positive() -> None:
    got = log_returns([1.0, 2.0, 0.0, 4.0, -1.0, 2.0, None, 3.0])
    assert got == (None, math.log(2.0), None, None, None, None, None, None)
    assert log_returns([]) == () and log_returns([5.0]) == (None,)


@pytest.mark.parametrize("n", [-300, -5, -1, 0, 1, 5, 106, 107, 300])
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_shift_is_pandas_shift(n: int, gaps: bool) -> None:
    c = series("DWDP", "close", gaps)  # 107 bars
    assert_series(shift(c, n), none(nan(c).shift(n)), rel=0)
    assert shift(c, n) == tuple(c[i - n] if 0 <= i - n < len(c) else None for i in range(len(c)))


def test_shift_takes_only_an_int() -> None:
    with pytest.raises(TypeError, match="shift: n must be an int"):
        shift([1.0], 1.0)


# --- macd against a plain-Python reading of TradingView's Pine definitions ----------------------


def pine_sma(src: Sequence[float | None], length: int, i: int) -> float | None:
    """``ta.sma(src, length)`` at bar ``i``: na unless the last ``length`` values all exist."""
    if i + 1 < length:
        return None
    window = src[i + 1 - length : i + 1]
    if any(v is None for v in window):
        return None
    return sum(window) / length


def pine_ema(src: Sequence[float | None], length: int) -> list[float | None]:
    """``ta.ema``: ``sum := na(sum[1]) ? ta.sma(src, length) : alpha * src + (1 - alpha) *
    sum[1]``, with na where the source is na."""
    alpha = 2 / (length + 1)
    out: list[float | None] = []
    prev: float | None = None
    for i, x in enumerate(src):
        if x is None:
            value = None
        elif prev is None:
            value = pine_sma(src, length, i)
        else:
            value = alpha * x + (1 - alpha) * prev
        out.append(value)
        prev = value
    return out


def pine_macd(src: Sequence[float | None], fast: int, slow: int, signal: int) -> tuple[list, ...]:
    """``[macdLine, signalLine, histLine] = ta.macd(src, fast, slow, signal)``."""
    fast_ma, slow_ma = pine_ema(src, fast), pine_ema(src, slow)
    line = [
        None if a is None or b is None else a - b for a, b in zip(fast_ma, slow_ma, strict=True)
    ]
    sig = pine_ema(line, signal)
    hist = [None if a is None or b is None else a - b for a, b in zip(line, sig, strict=True)]
    return line, sig, hist


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(
    ("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16), (1, 2, 1)]
)
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "with-gaps"])
def test_macd_is_tradingviews(symbol: str, fast: int, slow: int, signal: int, gaps: bool) -> None:
    c = series(symbol, "close", gaps)
    got = macd(c, fast, slow, signal)
    assert type(got) is tuple and len(got) == 3
    for mine, theirs in zip(got, pine_macd(c, fast, slow, signal), strict=True):
        assert_series(mine, theirs, rel=1e-8)
    if not gaps and slow + signal - 1 <= len(c):
        line, sig, _ = got
        assert line[slow - 2] is None and line[slow - 1] is not None
        assert sig[slow + signal - 3] is None and sig[slow + signal - 2] is not None


def test_macd_defaults_are_12_26_9() -> None:
    c = series("AAPL", "close")
    assert macd(c) == macd(c, 12, 26, 9)
    with pytest.raises(TypeError, match="macd: signal must be an int"):
        macd(c, 12, 26, 9.0)


# --- pstdev, and the warnings of a helper given too little history ------------------------------


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_pstdev_is_statistics_pstdev(symbol: str) -> None:
    c = series(symbol, "close", gaps=True)
    present = [x for x in c if x is not None]
    assert pstdev(c) == pytest.approx(statistics.pstdev(present), rel=1e-13)
    assert pstdev([]) is None and pstdev([None]) is None and pstdev([3.0]) == 0.0


SHORT = [
    ("sma(xs, 300)", lambda c: helpers.sma(c, 300)),
    ("ema(xs, 300)", lambda c: helpers.ema(c, 300)),
    ("rsi(xs, 252)", lambda c: helpers.rsi(c, 252)),
    ("highest(xs, 253)", lambda c: helpers.highest(c, 253)),
    ("lowest(xs, 253)", lambda c: helpers.lowest(c, 253)),
    ("pct_change(xs, 252)", lambda c: helpers.pct_change(c, 252)),
    ("shift(xs, -252)", lambda c: shift(c, -252)),
    ("atr(high, low, close, 252)", lambda c: atr(c, c, c, 252)),
    ("macd(xs, 12, 245, 9)", lambda c: macd(c, 12, 245, 9)[1]),
    ("corr(xs, ys, 253)", lambda c: corr(c, c, 253)),
    ("beta(xs, ys, 253)", lambda c: beta(c, c, 253)),
    ("ts_rank(xs, 253)", lambda c: ts_rank(c, 253)),
]


@pytest.mark.parametrize(("call", "fn"), SHORT, ids=[s[0] for s in SHORT])
def test_a_helper_given_too_little_history_warns_once(call: str, fn) -> None:
    c = series("AAPL", "close")[:252]
    assert set(fn(c)) == {None}
    warnings = _warnings_of(fn, c)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{call} needs at least ")
    assert warnings[0].endswith("so it gives only None: a longer `lookback` gives more bars")


def _warnings_of(fn, c) -> list[str]:
    take_warnings()
    fn(c)
    fn(c)
    return take_warnings()


def test_enough_history_gives_no_warning_and_warnings_are_bounded() -> None:
    take_warnings()
    c = series("AAPL", "close")[:252]
    helpers.sma(c, 252)
    macd(c, 12, 26, 9)
    corr(c, c, 252)
    assert take_warnings() == []
    for n in range(300, 400):
        helpers.sma(c, n)
    assert len(take_warnings()) == MAX_WARNINGS
    assert take_warnings() == []
