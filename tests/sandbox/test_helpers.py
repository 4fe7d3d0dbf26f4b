"""The script helpers against independent computations on real daily bars.

Every helper is checked against something that does not share its code: pandas (rolling
windows, ``ewm``, ``shift``, ``cummax``), ``statistics``, or a plain reference loop written
here the obvious way. Real closes and volumes come from the sample data set, for symbols with
long histories and one (DWDP, 107 bars) shorter than the longest window.
"""

from __future__ import annotations

import csv
import gzip
import math
import random
import statistics
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from sandbox import helpers
from sandbox.helpers import (
    HELPERS,
    ema,
    highest,
    lowest,
    max_drawdown,
    mean,
    pct_change,
    returns,
    rsi,
    sma,
    stdev,
    zscore,
)

SAMPLE_PRICES = Path(__file__).resolve().parents[2] / "data" / "sample" / "prices.csv.gz"
SYMBOLS = ["AAPL", "MSFT", "AMZN", "JPM", "DWDP"]
WINDOWS = [2, 5, 14, 20, 50, 200]
REL = 1e-9

# StockCharts' ChartSchool RSI worked example (14 periods). Their sheet rounds the averages and
# prints 70.53 first; unrounded Wilder gives these values (as other libraries' tests also do).
WILDER_CLOSES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61,
    46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35,
    44.03, 44.18, 44.22, 44.57, 43.42, 42.66, 43.13,
]  # fmt: skip
WILDER_RSI_14 = [
    70.46, 66.25, 66.48, 69.35, 66.29, 57.92, 62.88, 63.21, 56.01, 62.34, 54.67, 50.39, 40.02,
    41.49, 41.90, 45.50, 37.32, 33.09, 37.79,
]  # fmt: skip


@cache
def _bars() -> dict[str, list[tuple[str, float, int]]]:
    bars: dict[str, list[tuple[str, float, int]]] = {s: [] for s in SYMBOLS}
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["symbol"] in bars:
                bars[row["symbol"]].append((row["date"], float(row["close"]), int(row["volume"])))
    for rows in bars.values():
        rows.sort()
    return bars


def closes(symbol: str) -> list[float]:
    return [close for _, close, _ in _bars()[symbol]]


def volumes(symbol: str) -> list[int]:
    return [volume for _, _, volume in _bars()[symbol]]


def from_pandas(series: pd.Series) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in series]


def with_nan(xs: Sequence[float | None]) -> pd.Series:
    return pd.Series([math.nan if x is None else x for x in xs], dtype=float)


def assert_series(got: object, want: Sequence[float | None]) -> None:
    """Same length, None exactly where expected, numbers within 1e-9 relative."""
    assert isinstance(got, tuple)
    assert len(got) == len(want)
    assert [g is None for g in got] == [w is None for w in want]
    numbers = [g for g in got if g is not None]
    assert all(type(g) in (int, float) for g in numbers)
    assert numbers == pytest.approx([w for w in want if w is not None], rel=REL)


# --- plain references, written the obvious way --------------------------------------------------


def ref_sma(xs: Sequence[float | None], n: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(xs)):
        window = xs[max(0, i - n + 1) : i + 1]
        full = i >= n - 1 and None not in window
        out.append(math.fsum(window) / n if full else None)
    return out


def ref_ema(xs: Sequence[float], n: int) -> list[float | None]:
    """EMA seeded by the SMA at n-1, via pandas' ewm (adjust=False starts at the seed)."""
    if n > len(xs):
        return [None] * len(xs)
    seeded = [math.nan] * (n - 1) + [math.fsum(xs[:n]) / n, *xs[n:]]
    return from_pandas(pd.Series(seeded, dtype=float).ewm(span=n, adjust=False).mean())


def ref_rsi(xs: Sequence[float], n: int) -> list[float | None]:
    """Wilder's RSI exactly as his book describes it, one step at a time."""
    out: list[float | None] = [None] * len(xs)
    if len(xs) <= n:
        return out
    gains = [max(xs[i] - xs[i - 1], 0.0) for i in range(1, len(xs))]
    losses = [max(xs[i - 1] - xs[i], 0.0) for i in range(1, len(xs))]
    avg_gain = sum(gains[:n]) / n
    avg_loss = sum(losses[:n]) / n
    for i in range(n, len(xs)):
        if i > n:
            avg_gain = (avg_gain * (n - 1) + gains[i - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[i - 1]) / n
        out[i] = 100.0 if avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


def per_run(
    ref: Callable[[Sequence[float], int], list[float | None]], xs: Sequence[float | None], n: int
) -> list[float | None]:
    """The documented None rule for ema/rsi: each run of non-None values is its own series."""
    out: list[float | None] = [None] * len(xs)
    start = 0
    for i in range(len(xs) + 1):
        if i == len(xs) or xs[i] is None:
            out[start:i] = ref(xs[start:i], n)
            start = i + 1
    return out


# --- each helper against an independent computation on real data --------------------------------


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", WINDOWS)
def test_sma_matches_pandas_rolling_mean(symbol: str, n: int) -> None:
    xs = closes(symbol)
    got = sma(xs, n)
    assert_series(got, from_pandas(pd.Series(xs).rolling(n).mean()))
    assert_series(got, ref_sma(xs, n))
    assert got[: n - 1] == (None,) * min(n - 1, len(xs))
    if n <= len(xs):
        assert got[n - 1] == pytest.approx(statistics.fmean(xs[:n]), rel=REL)


@pytest.mark.parametrize("symbol", ["AAPL", "DWDP"])
@pytest.mark.parametrize("n", [2, 5, 20, 200])
def test_sma_of_int_volumes(symbol: str, n: int) -> None:
    xs = volumes(symbol)
    assert_series(sma(xs, n), from_pandas(pd.Series(xs, dtype=float).rolling(n).mean()))


def test_windowed_helpers_on_every_length_and_window() -> None:
    # Covers both code paths (small windows and blocks of n) and every block-boundary case:
    # lengths that are and are not multiples of n, with and without gaps.
    rng = random.Random(7)
    for size in range(45):
        xs: list[float | None] = [round(rng.uniform(10, 20), 2) for _ in range(size)]
        gappy = [None if rng.random() < 0.1 else x for x in xs]
        for n in range(1, 22):
            for data in (xs, gappy):
                s = with_nan(data)
                assert_series(sma(data, n), ref_sma(data, n))
                assert_series(highest(data, n), from_pandas(s.rolling(n).max()))
                assert_series(lowest(data, n), from_pandas(s.rolling(n).min()))
                assert_series(ema(data, n), per_run(ref_ema, data, n))
                assert_series(rsi(data, n), per_run(ref_rsi, data, n))


def test_sma_does_not_drift_after_a_huge_value_leaves_the_window() -> None:
    # A running sum would keep the 1e12's rounding error in every later window.
    xs = [0.1 * (i % 7) + 1.0 for i in range(600)]
    xs[50] = 1e12
    for n in (3, 20, 50):
        got = sma(xs, n)
        want = [math.fsum(xs[i - n + 1 : i + 1]) / n for i in range(n - 1, len(xs))]
        assert list(got[n - 1 :]) == pytest.approx(want, rel=1e-12)


# The recursive helpers against their references (pandas' ewm seeded by the SMA, a plain
# Wilder loop): helper, reference, and how many values come before the first number.
RECURSIVE = {"ema": (ema, ref_ema, lambda n: n - 1), "rsi": (rsi, ref_rsi, lambda n: n)}


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("name", RECURSIVE)
def test_recursive_helpers_match_their_reference(name: str, symbol: str, n: int) -> None:
    helper, reference, before_first = RECURSIVE[name]
    xs = closes(symbol)
    got = helper(xs, n)
    assert_series(got, reference(xs, n))
    assert got[: before_first(n)] == (None,) * min(before_first(n), len(xs))


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", WINDOWS)
def test_ema_is_seeded_by_the_sma(symbol: str, n: int) -> None:
    xs = closes(symbol)
    if n <= len(xs):
        assert ema(xs, n)[n - 1] == sma(xs, n)[n - 1]


def test_ema_by_hand() -> None:
    # a = 2/3: 1.5 seeds, then 2/3*3 + 1/3*1.5 = 2.5
    assert ema([1, 2, 3], 2) == pytest.approx((None, 1.5, 2.5))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rsi_stays_within_0_and_100(symbol: str) -> None:
    for n in WINDOWS:
        assert all(0.0 <= v <= 100.0 for v in rsi(closes(symbol), n) if v is not None)


def test_rsi_default_window_is_14() -> None:
    xs = closes("AAPL")
    assert rsi(xs) == rsi(xs, 14)


def test_rsi_known_values_of_wilders_worked_example() -> None:
    got = rsi(WILDER_CLOSES, 14)
    assert got[:14] == (None,) * 14
    assert got[14] == pytest.approx(70.4641, abs=5e-5)
    assert [round(v, 2) for v in got[14:]] == WILDER_RSI_14


def test_rsi_by_hand() -> None:
    # changes +1, +1, -1; n=2: first averages 1 and 0 -> 100; then 0.5 and 0.5 -> 50
    assert rsi([1, 2, 3, 2], 2) == (None, None, 100.0, 50.0)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", [1, 5, 20, 200])
def test_pct_change_matches_pandas_shift(symbol: str, n: int) -> None:
    xs = closes(symbol)
    s = pd.Series(xs)
    got = pct_change(xs, n)
    assert_series(got, from_pandas(s / s.shift(n) - 1))
    assert got[:n] == (None,) * min(n, len(xs))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_returns_is_pct_change_by_one(symbol: str) -> None:
    xs = closes(symbol)
    assert returns(xs) == pct_change(xs, 1) == pct_change(xs)
    assert_series(returns(xs), from_pandas(pd.Series(xs).pct_change()))


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("n", [1, *WINDOWS])
def test_highest_and_lowest_match_pandas_rolling(symbol: str, n: int) -> None:
    xs = closes(symbol)
    high, low = highest(xs, n), lowest(xs, n)
    assert_series(high, from_pandas(pd.Series(xs).rolling(n).max()))
    assert_series(low, from_pandas(pd.Series(xs).rolling(n).min()))
    assert high[: n - 1] == low[: n - 1] == (None,) * min(n - 1, len(xs))
    # A window's max and min are values of that window, exactly.
    for i in range(n - 1, len(xs)):
        assert high[i] == max(xs[i - n + 1 : i + 1])
        assert low[i] == min(xs[i - n + 1 : i + 1])


@pytest.mark.parametrize("n", [3, 7, 30])
def test_highest_and_lowest_on_monotonic_series(n: int) -> None:
    rising = [float(i) for i in range(100)]
    falling = rising[::-1]
    assert highest(rising, n)[n - 1 :] == tuple(rising[n - 1 :])
    assert lowest(rising, n)[n - 1 :] == tuple(rising[: len(rising) - n + 1])
    assert highest(falling, n)[n - 1 :] == tuple(falling[: len(falling) - n + 1])
    assert lowest(falling, n)[n - 1 :] == tuple(falling[n - 1 :])


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_mean_stdev_zscore_match_statistics_and_pandas(symbol: str) -> None:
    xs = closes(symbol)
    mu, sd = statistics.mean(xs), statistics.stdev(xs)
    assert mean(xs) == pytest.approx(mu, rel=REL)
    assert stdev(xs) == pytest.approx(sd, rel=REL)
    assert stdev(xs) == pytest.approx(pd.Series(xs).std(), rel=REL)
    assert list(zscore(xs)) == pytest.approx([(x - mu) / sd for x in xs], rel=REL, abs=1e-12)
    r = [x for x in returns(xs) if x is not None]
    assert stdev(r) == pytest.approx(statistics.stdev(r), rel=REL)
    assert mean(volumes(symbol)) == pytest.approx(statistics.mean(volumes(symbol)), rel=REL)


def test_stdev_stays_accurate_when_the_spread_is_tiny_next_to_the_values() -> None:
    xs = [1e15 + 0.25 * (i % 5) for i in range(1000)]
    assert stdev(xs) == pytest.approx(statistics.stdev(xs), rel=REL)
    assert mean(xs) == pytest.approx(statistics.mean(xs), rel=REL)
    huge = [1e300 * (1 + i % 3) for i in range(30)]
    assert stdev(huge) == pytest.approx(statistics.stdev(huge), rel=REL)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_max_drawdown_matches_pandas_cummax(symbol: str) -> None:
    xs = closes(symbol)
    s = pd.Series(xs)
    want = float((s / s.cummax() - 1).min())
    got = max_drawdown(xs)
    assert got == pytest.approx(want, rel=REL)
    assert got <= 0


# --- asking for more history than there is ------------------------------------------------------


@pytest.mark.parametrize("fn", [sma, ema, rsi, pct_change, highest, lowest])
def test_windows_longer_than_the_data_give_nones(fn: Callable[..., tuple]) -> None:
    xs = closes("DWDP")
    for n in (len(xs) + 1, 10**30):
        assert fn(xs, n) == (None,) * len(xs)
    assert fn([], 3) == ()


def test_exactly_enough_history() -> None:
    xs = [1.0, 2.0, 3.0]
    assert sma(xs, 3) == (None, None, 2.0)
    assert ema(xs, 3) == (None, None, 2.0)
    assert highest(xs, 3) == (None, None, 3.0)
    assert lowest(xs, 3) == (None, None, 1.0)
    assert rsi(xs, 3) == (None, None, None)
    assert rsi([*xs, 4.0], 3) == (None, None, None, 100.0)
    assert pct_change(xs, 2) == (None, None, 2.0)


# --- None inside the data -----------------------------------------------------------------------


def closes_with_gaps() -> list[float | None]:
    xs: list[float | None] = list(closes("AAPL"))
    for i in (3, 30, 31, 100, 250, 251, 252, 400):
        xs[i] = None
    return xs


@pytest.mark.parametrize("n", [1, 2, 5, 14, 50, 200])
def test_windowed_helpers_give_none_where_the_window_holds_none(n: int) -> None:
    xs = closes_with_gaps()
    s = with_nan(xs)
    assert_series(sma(xs, n), from_pandas(s.rolling(n).mean()))
    assert_series(sma(xs, n), ref_sma(xs, n))
    assert_series(highest(xs, n), from_pandas(s.rolling(n).max()))
    assert_series(lowest(xs, n), from_pandas(s.rolling(n).min()))


@pytest.mark.parametrize("n", [2, 5, 14, 50])
def test_ema_and_rsi_restart_after_a_none(n: int) -> None:
    xs = closes_with_gaps()
    assert_series(ema(xs, n), per_run(ref_ema, xs, n))
    assert_series(rsi(xs, n), per_run(ref_rsi, xs, n))


def test_ema_and_rsi_none_rule_by_hand() -> None:
    xs = [1, 2, 3, None, 4, 5, 6, 7]
    # After the None, ema needs n=2 fresh values (seed 4.5 at index 5), rsi n+1=3 (index 6).
    assert ema(xs, 2) == pytest.approx((None, 1.5, 2.5, None, None, 4.5, 5.5, 6.5))
    assert rsi(xs, 2) == (None, None, 100.0, None, None, None, 100.0, 100.0)
    assert ema([None, 1, 2], 2) == (None, None, 1.5)
    assert rsi([1, None, 2, 3, None], 1) == (None, None, None, 100.0, None)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_pct_change_reads_only_its_two_values(n: int) -> None:
    xs = closes_with_gaps()
    s = with_nan(xs)
    assert_series(pct_change(xs, n), from_pandas(s / s.shift(n) - 1))
    assert pct_change([1.0, None, 4.0], 2) == (None, None, 3.0)
    assert pct_change([1.0, 2.0, None, 8.0]) == (None, 1.0, None, None)


def test_pct_change_is_none_where_the_base_is_zero() -> None:
    assert pct_change([0, 1, 2, 0, 5]) == (None, None, 1.0, -1.0, None)
    assert pct_change([0.0, 3.0, 6.0], 2) == (None, None, None)
    assert returns([0, 0]) == (None, None)


def test_aggregates_skip_none() -> None:
    xs = closes_with_gaps()
    present = [x for x in xs if x is not None]
    assert mean(xs) == pytest.approx(statistics.mean(present), rel=REL)
    assert stdev(xs) == pytest.approx(statistics.stdev(present), rel=REL)
    assert max_drawdown(xs) == max_drawdown(present)
    mu, sd = statistics.mean(present), statistics.stdev(present)
    want = [None if x is None else (x - mu) / sd for x in xs]
    assert_series(zscore(xs), want)
    assert zscore([1.0, None, 3.0]) == pytest.approx((-math.sqrt(0.5), None, math.sqrt(0.5)))
    assert max_drawdown([100, None, 50, 75]) == -0.5


# --- small edge cases ---------------------------------------------------------------------------


def test_mean_and_stdev_of_too_little() -> None:
    assert mean([]) is None
    assert mean([None, None]) is None
    assert mean([4]) == 4.0
    assert stdev([]) is None
    assert stdev([3.0]) is None
    assert stdev([3.0, None]) is None
    assert stdev([2, 4]) == pytest.approx(math.sqrt(2))
    assert stdev([5.0] * 10) == 0.0


def test_zscore_without_a_spread_is_all_none() -> None:
    assert zscore([]) == ()
    assert zscore([1.0]) == (None,)
    assert zscore([2.0, 2.0, None]) == (None, None, None)


def test_rsi_extremes() -> None:
    rising = [float(i) for i in range(1, 40)]
    assert rsi(rising, 14)[14:] == (100.0,) * 25
    assert rsi(rising[::-1], 14)[14:] == (0.0,) * 25
    # No loss at all, so by the contract's rule ("100 where the average loss is 0"):
    assert rsi([5.0] * 20, 14)[14:] == (100.0,) * 6


def test_max_drawdown_cases() -> None:
    assert max_drawdown([1, 2, 3, 4]) == 0.0
    assert max_drawdown([100, 50, 75]) == -0.5
    assert max_drawdown([100.0, 80.0, 120.0, 90.0, 130.0]) == pytest.approx(-0.25)
    assert max_drawdown([7]) == 0.0
    assert max_drawdown([]) is None
    assert max_drawdown([None]) is None
    # A fall is measured from a positive peak only.
    assert max_drawdown([-5, 0, 10, 5]) == -0.5
    assert max_drawdown([-5, 0]) is None


def test_n_of_one() -> None:
    xs = [3, 1.5, 2]
    assert sma(xs, 1) == (3.0, 1.5, 2.0)
    assert ema(xs, 1) == (3.0, 1.5, 2.0)
    assert highest(xs, 1) == lowest(xs, 1) == (3, 1.5, 2)


# --- what scripts can and cannot do with them ---------------------------------------------------

SERIES_HELPERS = [sma, ema, rsi, pct_change, highest, lowest]
ALL_CALLS: list[tuple[str, Callable[[object], object]]] = [
    ("sma", lambda xs: sma(xs, 3)),
    ("ema", lambda xs: ema(xs, 3)),
    ("rsi", lambda xs: rsi(xs, 3)),
    ("pct_change", lambda xs: pct_change(xs, 2)),
    ("returns", returns),
    ("highest", lambda xs: highest(xs, 3)),
    ("lowest", lambda xs: lowest(xs, 3)),
    ("mean", mean),
    ("stdev", stdev),
    ("zscore", zscore),
    ("max_drawdown", max_drawdown),
]


def test_helpers_table_is_exactly_the_contract() -> None:
    assert set(HELPERS) == {
        "sma", "ema", "rsi", "pct_change", "returns", "highest", "lowest",
        "mean", "stdev", "pstdev", "zscore", "max_drawdown",
    }  # fmt: skip
    for name, fn in HELPERS.items():
        assert fn is getattr(helpers, name)
        assert fn.__name__ == name
        assert fn.__doc__
        assert vars(fn) == {}  # nothing attached that a script could change


@pytest.mark.parametrize(("name", "call"), ALL_CALLS)
def test_inputs_are_not_mutated_and_series_are_tuples(
    name: str, call: Callable[[object], object]
) -> None:
    xs = closes_with_gaps()[:120]
    before = list(xs)
    as_list = call(xs)
    assert xs == before
    as_tuple = call(tuple(xs))
    assert as_list == as_tuple
    if name not in ("mean", "stdev", "max_drawdown"):
        assert isinstance(as_list, tuple)
        assert len(as_list) == len(xs)


@pytest.mark.parametrize("bad", ["1,2,3", {1: 2}, (x for x in [1.0, 2.0]), {1.0}, None, 3.0, b""])
@pytest.mark.parametrize(("name", "call"), ALL_CALLS)
def test_xs_must_be_a_list_or_tuple(
    name: str, call: Callable[[object], object], bad: object
) -> None:
    with pytest.raises(TypeError) as err:
        call(bad)
    assert str(err.value) == f"{name}: xs must be a list or tuple of numbers"


@pytest.mark.parametrize("item", [True, "1.0", [1.0], object(), 1j])
@pytest.mark.parametrize(("name", "call"), ALL_CALLS)
def test_items_must_be_numbers_or_none(
    name: str, call: Callable[[object], object], item: object
) -> None:
    with pytest.raises(TypeError) as err:
        call([1.0, 2.0, item, 4.0])
    message = str(err.value)
    assert message.startswith(f"{name}: xs must hold only numbers or None")
    assert "item 2" in message
    assert "helpers" not in message
    assert "/" not in message


@pytest.mark.parametrize("item", [math.nan, math.inf, -math.inf, 10**400])
@pytest.mark.parametrize(("name", "call"), ALL_CALLS)
def test_nan_infinity_and_huge_ints_are_refused(
    name: str, call: Callable[[object], object], item: object
) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: xs must hold .* \(item 1 is "):
        call([1.0, item, None, 4.0])


def test_values_whose_sum_overflows_are_still_accepted() -> None:
    # Each value is a fine float; only their sum is not. That overflow is arithmetic, not input,
    # and the helpers keep finite inputs finite (issue 17, item 13).
    xs = [1e308, 1e308, 1e308]
    assert highest(xs, 2) == (None, 1e308, 1e308)
    assert mean(xs) == 1e308


@pytest.mark.parametrize(
    "xs",
    [
        [1.7e308, 1.7e308],
        [1.7e308, 1.7e308, 1.7e308, None],
        [1.7e308, 1.6e308, 1.5e308],
        [-1.7e308, -1.7e308],
        [1.7e308, -1.7e308, 1e308, -1e308],
        [int(1.7e308), 1.7e308],
    ],
)
def test_mean_and_stdev_of_huge_values_are_finite_and_exact(xs: list) -> None:
    """``stdev([1.7e308, 1.7e308])`` is 0.0 and its mean 1.7e308 (it was nan and inf)."""
    vals = [x for x in xs if x is not None]
    exact_mean = statistics.mean(fractions(vals))
    assert mean(xs) == pytest.approx(float(exact_mean), rel=1e-15)
    assert stdev(xs) == pytest.approx(statistics.stdev(fractions(vals)), rel=1e-12)
    assert helpers.pstdev(xs) == pytest.approx(statistics.pstdev(fractions(vals)), rel=1e-12)
    assert stdev([1.7e308, 1.7e308]) == 0.0 and mean([1.7e308, 1.7e308]) == 1.7e308


def fractions(xs: list) -> list:
    from fractions import Fraction

    return [Fraction(x) for x in xs]


@pytest.mark.parametrize("fn", SERIES_HELPERS)
@pytest.mark.parametrize(
    ("n", "error"),
    [(0, ValueError), (-3, ValueError), (True, TypeError), (2.0, TypeError), ("5", TypeError)],
)
def test_n_must_be_a_positive_int(fn: Callable[..., tuple], n: object, error: type) -> None:
    with pytest.raises(error) as err:
        fn([1.0, 2.0, 3.0], n)
    assert str(err.value).startswith(f"{fn.__name__}: n must be ")


def test_list_and_tuple_subclasses_are_read_once() -> None:
    class Shifty(list):
        """Iterates honestly once, then lies: the helper must not look twice."""

        reads = 0

        def __iter__(self):
            Shifty.reads += 1
            if Shifty.reads > 1:
                return iter(["boom"] * len(self))
            return super().__iter__()

    xs = [1.0, 2.0, 3.0, 4.0]
    assert sma(Shifty(xs), 2) == sma(xs, 2)
    assert Shifty.reads == 1
