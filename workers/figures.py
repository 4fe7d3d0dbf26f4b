"""An evaluation's figures: each date's values against the returns that followed (API.md).

Computed once per job, in the worker that finishes it, with pandas and scipy; never in the
sandbox. The definitions are alphalens's (``factor_information_coefficient``,
``mean_return_by_quantile`` by date and not demeaned, ``quantile_turnover`` and
``factor_rank_autocorrelation`` with ``period=1`` over the rebalance dates), each horizon on
its own, prices on the job's calendar; tests/workers/test_figures.py checks them against
alphalens-reloaded on the same panel.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

MIN_IC_NAMES = 3  # no IC for a date with fewer names (API.md)


@dataclass(frozen=True)
class Figures:
    """The figures per horizon, the IC series, and the panel's per-row quantiles and
    forward returns (for ``panel.csv``)."""

    horizons: dict[str, dict[str, Any]]
    ic_series: dict[str, list[list[Any]]]
    dates_skipped: int
    quantiles: dict[int, pd.Series]  # horizon -> quantile by (date, symbol)
    forward: dict[int, pd.Series]  # horizon -> forward return by (date, symbol)
    values: pd.Series  # the (neutralised) finite values by (date, symbol)


def forward_returns(
    closes: Iterable[tuple[str, str, float]], dates: Sequence[str], horizons: Sequence[int]
) -> dict[int, pd.DataFrame]:
    """Per horizon, a frame (rebalance date x symbol) of ``c(s, cal[i+h]) / c(s, cal[i]) - 1``
    with ``c`` the last close on or before a date (carried forward), on the calendar of the
    dates any symbol has a bar."""
    frame = pd.DataFrame.from_records(list(closes), columns=["symbol", "date", "close"])
    prices = frame.pivot_table(index="date", columns="symbol", values="close", aggfunc="last")
    prices = prices.sort_index().ffill()
    out = {}
    for h in horizons:
        fwd = (prices.shift(-h) / prices - 1).reindex(list(dates))
        out[h] = fwd
    return out


def neutralized(values: pd.Series, sectors: Mapping[str, str | None]) -> pd.Series:
    """Each date's values minus the mean of that date's values in the same sector (symbols
    without one form one group)."""
    symbols = values.index.get_level_values("symbol")
    groups = pd.Series([sectors.get(s) or "" for s in symbols], index=values.index)
    dates = values.index.get_level_values("date")
    means = values.groupby([dates, groups.to_numpy()]).transform("mean")
    return values - means


def compute(
    values: pd.Series,
    forward: Mapping[int, pd.DataFrame],
    *,
    dates: Sequence[str],
    quantiles: int,
    neutralize: str | None,
    sectors: Mapping[str, str | None],
) -> Figures:
    """The figures of ``values`` (a Series by (date, symbol) of numbers or NaN)."""
    values = values[np.isfinite(values.to_numpy(dtype=float))].astype(float)
    if neutralize == "sector" and len(values):
        values = neutralized(values, sectors)
    horizons: dict[str, dict[str, Any]] = {}
    ic_series: dict[str, list[list[Any]]] = {}
    skipped: set[str] = set()
    quantile_rows: dict[int, pd.Series] = {}
    forward_rows: dict[int, pd.Series] = {}
    for h, fwd in forward.items():
        stacked = fwd.stack()
        stacked.index = stacked.index.set_names(["date", "symbol"])
        forward_rows[h] = stacked
        data = pd.DataFrame({"factor": values})
        data["forward"] = stacked.reindex(data.index)
        data = data.dropna()
        data = data[np.isfinite(data["forward"].to_numpy())]
        figures, series, quant, skipped_h = _one_horizon(data, dates, quantiles)
        figures["dates_skipped"] = len(skipped_h)
        skipped.update(skipped_h)
        horizons[str(h)] = figures
        ic_series[str(h)] = series
        quantile_rows[h] = quant
    return Figures(horizons, ic_series, len(skipped), quantile_rows, forward_rows, values)


def _one_horizon(
    data: pd.DataFrame, dates: Sequence[str], quantiles: int
) -> tuple[dict[str, Any], list[list[Any]], pd.Series, list[str]]:
    order = {d: i for i, d in enumerate(dates)}
    by_date = {d: g.droplevel("date") for d, g in data.groupby(level="date", sort=False)}
    present = sorted(by_date, key=order.__getitem__)
    ics: list[list[Any]] = []
    labelled: list[pd.Series] = []
    skipped: list[str] = []
    for d in present:
        group = by_date[d]
        if len(group) >= MIN_IC_NAMES:
            ic = _spearman(group["factor"], group["forward"])
            if ic is not None:
                ics.append([d, ic])
        try:
            q = pd.qcut(group["factor"], quantiles, labels=False) + 1
        except ValueError:  # the values cannot be cut into that many bins
            skipped.append(d)
            continue
        labelled.append(pd.concat({d: q}, names=["date", "symbol"]))
    quant = pd.concat(labelled) if labelled else pd.Series(dtype=float)
    figures = _ic_figures([ic for _, ic in ics])
    figures.update(_quantile_figures(data, quant, present, quantiles))
    return figures, ics, quant, skipped


def _spearman(x: pd.Series, y: pd.Series) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant column: no IC, said by the NaN
        rho = stats.spearmanr(x.to_numpy(), y.to_numpy())[0]
    return None if not np.isfinite(rho) else float(rho)


def _ic_figures(ics: list[float]) -> dict[str, Any]:
    n = len(ics)
    series = pd.Series(ics, dtype=float)
    mean = float(series.mean()) if n else math.nan
    std = float(series.std(ddof=1)) if n > 1 else math.nan
    spread = math.isfinite(std) and std > 0
    return {
        "ic_mean": _num(mean),
        "ic_std": _num(std),
        "ic_ir": _num(mean / std) if spread else None,
        "ic_t": _num(mean / (std / math.sqrt(n))) if spread else None,
        "ic_hit_rate": _num((series > 0).mean()) if n else None,
        "ic_dates": n,
    }


def _quantile_figures(
    data: pd.DataFrame, quant: pd.Series, present: list[str], quantiles: int
) -> dict[str, Any]:
    empty = {
        "quantile_returns": [None] * quantiles,
        "spread_mean": None,
        "spread_t": None,
        "turnover_top": None,
        "turnover_bottom": None,
        "rank_autocorrelation": None,
    }
    if quant.empty:
        return empty
    clean = data.loc[quant.index].assign(quantile=quant.astype(int))
    dates = clean.index.get_level_values("date")
    mean_by_date = clean.groupby(["quantile", dates])["forward"].mean()
    per_quantile = mean_by_date.groupby(level="quantile").mean()
    returns = [_num(per_quantile.get(q, math.nan)) for q in range(1, quantiles + 1)]
    spread = pd.Series(dtype=float)
    if 1 in per_quantile.index and quantiles in per_quantile.index:
        top = mean_by_date.xs(quantiles, level="quantile")
        spread = (top - mean_by_date.xs(1, level="quantile")).dropna()
    kept = [d for d in present if d in set(dates)]
    return {
        "quantile_returns": returns,
        "spread_mean": _num(spread.mean()) if len(spread) else None,
        "spread_t": _t(spread),
        "turnover_top": _turnover(clean["quantile"], quantiles, kept),
        "turnover_bottom": _turnover(clean["quantile"], 1, kept),
        "rank_autocorrelation": _rank_autocorrelation(clean["factor"], kept),
    }


def _turnover(quantile: pd.Series, q: int, dates: list[str]) -> float | None:
    """Mean over dates of the share of names in quantile ``q`` that were not in it at the
    previous date on which it had names (alphalens ``quantile_turnover``, ``period=1``)."""
    members = quantile[quantile == q]
    sets = {d: set(g.index.get_level_values("symbol")) for d, g in members.groupby(level="date")}
    previous: set[str] | None = None
    shares = []
    for d in dates:
        names = sets.get(d)
        if names is None:
            continue
        if previous is not None:
            shares.append(len(names - previous) / len(names))
        previous = names
    return _num(float(np.mean(shares))) if shares else None


def _rank_autocorrelation(factor: pd.Series, dates: list[str]) -> float | None:
    """Mean over dates of the Pearson correlation of each date's ranks with the previous
    date's, over the names present at both (alphalens ``factor_rank_autocorrelation``)."""
    ranks = factor.groupby(level="date").rank()
    table = ranks.unstack("symbol").reindex(dates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        autocorr = table.corrwith(table.shift(1), axis=1)
    autocorr = autocorr.dropna()
    return _num(autocorr.mean()) if len(autocorr) else None


def _t(series: pd.Series) -> float | None:
    n = len(series)
    if n < 2:
        return None
    std = float(series.std(ddof=1))
    if not (math.isfinite(std) and std > 0):
        return None
    return _num(series.mean() / (std / math.sqrt(n)))


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
