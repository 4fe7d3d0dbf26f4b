"""Every figure of an evaluation against alphalens-reloaded on the same panel (API.md: to 1e-9).

Real data (../shared/data, or the shipped sample): closes with bars removed here and there
(a missing bar carries the close before it forward), symbols listed late (no close before
their first bar), values missing on some dates (a script that fails there), several
horizons, rebalance spacings and quantile counts, with and without sector neutralisation.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from functools import cache

import alphalens.performance as perf
import alphalens.utils as al_utils
import numpy as np
import pandas as pd
import pytest

from tests.conftest import SAMPLE_PRICES, SAMPLE_STOCKS, SHARED_DATA
from workers import figures
from workers.figures import compute
from workers.forward import forward_returns

TOLERANCE = 1e-9


@cache
def market() -> tuple[pd.DataFrame, dict[str, str | None]]:
    prices = SHARED_DATA / "prices.csv.gz"
    stocks = SHARED_DATA / "stocks.csv"
    if not prices.exists():
        prices, stocks = SAMPLE_PRICES, SAMPLE_STOCKS
    bars = pd.read_csv(prices, usecols=["symbol", "date", "close"])
    info = pd.read_csv(stocks)
    return bars, dict(zip(info["symbol"], info["sector"], strict=True))


def make_case(symbols: int, every: int, seed: int, *, nan_share: float = 0.05):
    """Closes with holes, the calendar, rebalance dates and a 20-day reversal panel."""
    bars, sectors = market()
    rng = np.random.default_rng(seed)
    names = sorted(bars["symbol"].unique())
    chosen = list(rng.choice(names, size=symbols, replace=False))
    data = bars[bars["symbol"].isin(chosen)]
    data = data[(data["date"] >= "2015-06-01") & (data["date"] <= "2017-03-31")]
    # Symbols listed late: their first ~150 bars removed.
    late = chosen[:3]
    first = sorted(data["date"].unique())[150]
    data = data[~(data["symbol"].isin(late) & (data["date"] < first))]
    # Missing bars: 2% of rows gone.
    data = data[rng.random(len(data)) > 0.02]
    # Sectors: a few symbols have none (they form one group of their own).
    sectors = {s: (None if i % 7 == 0 else sectors.get(s)) for i, s in enumerate(chosen)}
    calendar = sorted(data["date"].unique())
    start, end = calendar.index(calendar[30]), calendar.index(calendar[-40])
    dates = calendar[start : end + 1 : every]
    wide = data.pivot(index="date", columns="symbol", values="close").reindex(calendar)
    # The signal, point in time: each date's 20-day reversal on the bars seen so far.
    seen = wide.ffill()
    signal = -(seen / seen.shift(20) - 1)
    panel = signal.reindex(dates).stack()
    panel.index = panel.index.set_names(["date", "symbol"])
    failed = rng.random(len(panel)) < nan_share  # the script failed there
    panel[failed] = np.nan
    closes = list(data.itertuples(index=False, name=None))
    return closes, dates, panel, sectors, calendar


def alphalens_data(panel, closes, calendar, *, h, quantiles, bins=None):
    prices = pd.DataFrame.from_records(closes, columns=["symbol", "date", "close"])
    prices = prices.pivot(index="date", columns="symbol", values="close").reindex(calendar)
    prices.index = pd.DatetimeIndex(prices.index)
    factor = panel.dropna().copy()
    factor.index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(factor.index.get_level_values(0)), factor.index.get_level_values(1)],
        names=["date", "asset"],
    )
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = al_utils.get_clean_factor_and_forward_returns(
            factor,
            prices,
            quantiles=None if bins else quantiles,
            bins=bins,
            periods=(h,),
            filter_zscore=None,
            max_loss=1.0,
        )
    # Over the rebalance dates as they are: period=1 is the previous rebalance date.
    data.index = pd.MultiIndex.from_tuples(list(data.index), names=["date", "asset"])
    return data


def neutral(panel: pd.Series, sectors) -> pd.Series:
    """Sector neutralisation written out plainly (the reference for ``neutralize``)."""
    values = panel.dropna()
    out = values.copy()
    frame = values.reset_index()
    frame["group"] = [sectors.get(s) or "" for s in frame["symbol"]]
    for _, group in frame.groupby(["date", "group"]):
        idx = list(zip(group["date"], group["symbol"], strict=True))
        out.loc[idx] = group[0].to_numpy() - group[0].mean()
    return out


def close(a, b) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None and (b is None or math.isnan(b))
    return abs(a - b) <= TOLERANCE


CASES = [
    # symbols, every, horizons, quantiles, neutralize, seed
    (60, 5, (1, 5, 21), 5, None, 1),
    (60, 1, (1, 10), 3, "sector", 2),
    (40, 10, (5,), 10, None, 3),
    (80, 21, (1, 21, 63), 4, "sector", 4),
]


@pytest.mark.parametrize("case", CASES)
def test_every_figure_equals_alphalens(case):
    symbols, every, horizons, quantiles, neutralize, seed = case
    closes, dates, panel, sectors, calendar = make_case(symbols, every, seed)
    got = compute(
        panel,
        forward_returns(closes, dates, horizons),
        dates=dates,
        quantiles=quantiles,
        neutralize=neutralize,
        sectors=sectors,
    )
    values = neutral(panel, sectors) if neutralize else panel.dropna()
    for h in horizons:
        figures = got.horizons[str(h)]
        data = alphalens_data(values, closes, calendar, h=h, quantiles=quantiles)
        column = al_utils.get_forward_returns_columns(data.columns)[0]

        # IC: alphalens over every date's cross-section (one bin: no date is dropped for
        # binning), less the dates API.md gives no IC (fewer than 3 names, constant column).
        every_date = alphalens_data(values, closes, calendar, h=h, quantiles=quantiles, bins=1)
        counts = every_date.groupby(level="date").size()
        ic = perf.factor_information_coefficient(every_date)[
            al_utils.get_forward_returns_columns(every_date.columns)[0]
        ]
        ic = ic[counts.reindex(ic.index) >= 3].dropna()
        assert [d for d, _ in got.ic_series[str(h)]] == [d.strftime("%Y-%m-%d") for d in ic.index]
        assert np.allclose([v for _, v in got.ic_series[str(h)]], ic.to_numpy(), atol=TOLERANCE)
        assert figures["ic_dates"] == len(ic) > 5
        assert close(figures["ic_mean"], ic.mean())
        assert close(figures["ic_std"], ic.std())
        assert close(figures["ic_ir"], ic.mean() / ic.std())
        t = ic.mean() / (ic.std() / math.sqrt(len(ic)))
        assert close(figures["ic_t"], t)
        assert close(figures["ic_hit_rate"], float((ic > 0).mean()))

        # Quantile returns and the spread, by date, not demeaned.
        mean_ret, _ = perf.mean_return_by_quantile(data, by_date=True, demeaned=False)
        by_q = mean_ret[column].groupby(level="factor_quantile").mean()
        for q in range(1, quantiles + 1):
            assert close(figures["quantile_returns"][q - 1], by_q.get(q, float("nan")))
        top = mean_ret[column].xs(quantiles, level="factor_quantile")
        spread = (top - mean_ret[column].xs(1, level="factor_quantile")).dropna()
        assert close(figures["spread_mean"], spread.mean())
        assert close(figures["spread_t"], spread.mean() / (spread.std() / math.sqrt(len(spread))))

        # Turnover of the top and bottom quantiles, rank autocorrelation.
        turn_top = perf.quantile_turnover(data["factor_quantile"], quantiles, period=1)
        turn_bottom = perf.quantile_turnover(data["factor_quantile"], 1, period=1)
        assert close(figures["turnover_top"], turn_top.mean())
        assert close(figures["turnover_bottom"], turn_bottom.mean())
        autocorr = perf.factor_rank_autocorrelation(data, period=1)
        assert close(figures["rank_autocorrelation"], autocorr.mean())

        # Dates that could not be cut: exactly those alphalens dropped in binning.
        binned = set(data.index.get_level_values("date").strftime("%Y-%m-%d"))
        with_names = set(every_date.index.get_level_values("date").strftime("%Y-%m-%d"))
        assert figures["dates_skipped"] == len(with_names - binned)

        # The per-row quantiles (panel.csv) are alphalens's too.
        quant = got.quantiles[h]
        ref = data["factor_quantile"]
        ref.index = pd.MultiIndex.from_arrays(
            [ref.index.get_level_values(0).strftime("%Y-%m-%d"), ref.index.get_level_values(1)]
        )
        assert quant.sort_index().astype(int).tolist() == ref.sort_index().astype(int).tolist()


def test_a_date_that_cannot_be_cut_is_skipped_for_quantiles_only():
    """Tied values (a script that returns 1 or 0) cannot make 5 bins: the date keeps its IC
    but is left out of the quantile figures and counted."""
    closes, dates, panel, sectors, _ = make_case(30, 5, 7, nan_share=0)
    tied = panel.copy()
    first = dates[3]
    tied.loc[first] = (tied.loc[first] > 0).astype(float).to_numpy()
    got = compute(
        tied,
        forward_returns(closes, dates, (5,)),
        dates=dates,
        quantiles=5,
        neutralize=None,
        sectors=sectors,
    )
    assert got.horizons["5"]["dates_skipped"] == got.dates_skipped == 1
    assert first in [d for d, _ in got.ic_series["5"]]
    assert first not in set(got.quantiles[5].index.get_level_values("date"))


def test_the_quantile_cut_is_pandas_qcut_on_edges_ties_and_small_dates():
    """Each date is cut as ``pandas.qcut(values, q, labels=False)`` cuts it, including values
    that fall exactly on an edge (integers, sizes where n - 1 divides by q), ties, and dates
    whose edges repeat (qcut raises: None)."""
    rng = np.random.default_rng(11)
    cases = [rng.normal(size=n) for n in (1, 2, 3, 7, 11, 21, 101, 500)]
    cases += [np.arange(n, dtype=float) for n in (5, 6, 11, 16, 21, 41, 101)]
    cases += [rng.integers(0, k, size=n).astype(float) for k, n in ((2, 30), (5, 40), (50, 60))]
    cases += [np.round(rng.normal(size=200), 1), np.array([0.0, -0.0, 1.0, 2.0, 3.0, 4.0])]
    for quantiles in range(2, 11):
        levels = figures.qcut_levels(quantiles)
        for values in cases:
            try:
                expected = pd.qcut(values, quantiles, labels=False)
            except ValueError:
                expected = None
            got = figures.qcut_codes(values, levels)
            if expected is None:
                assert got is None, (quantiles, values)
            else:
                assert got is not None and got.tolist() == expected.tolist(), (quantiles, values)


def test_a_large_panel_takes_well_under_a_second():
    """500 symbols x 252 dates, three horizons: the figures are a rounding error of the job
    (one per-date loop left, the quantile cut; everything else whole tables at a time)."""
    bars, sectors = market()
    names = sorted(bars["symbol"].unique())
    extra = bars[bars["symbol"].isin(names[: max(0, 500 - len(names))])].assign(
        symbol=lambda f: f["symbol"] + ".X"
    )
    data = pd.concat([bars, extra])
    data = data[data["date"] >= "2016-01-01"]
    calendar = sorted(data["date"].unique())
    dates = calendar[:252]
    wide = data.pivot(index="date", columns="symbol", values="close").reindex(calendar).ffill()
    panel = (-(wide / wide.shift(20) - 1)).reindex(dates).stack()
    panel.index = panel.index.set_names(["date", "symbol"])
    forward = forward_returns(data.itertuples(index=False, name=None), dates, (1, 5, 21))
    started = time.perf_counter()
    compute(panel, forward, dates=dates, quantiles=5, neutralize="sector", sectors=sectors)
    assert time.perf_counter() - started < 2.0  # ~0.2 s alone; ~55 s before (a loop per date)
