"""An evaluation's figures: each date's values against the returns that followed (API.md).

Computed once per job, in the worker that finishes it, with numpy, pandas and scipy; never in
the sandbox. The definitions are alphalens's (``factor_information_coefficient``,
``mean_return_by_quantile`` by date and not demeaned, ``quantile_turnover`` and
``factor_rank_autocorrelation`` with ``period=1`` over the rebalance dates), each horizon on
its own, prices on the job's calendar; tests/workers/test_figures.py checks them against
alphalens-reloaded on the same panel.

Everything works on tables (rebalance date x symbol), a whole table at a time: ranks,
correlations, the quantile means and the turnover are array operations, and only the
quantile cut runs once per date (on that date's numbers, as ``pandas.qcut`` cuts them). A
500-symbol x 252-date panel takes a fraction of a second, where a groupby over dates with
pandas objects per date took seconds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MIN_IC_NAMES = 3  # no IC for a date with fewer names (API.md)


@dataclass(frozen=True)
class Figures:
    """The figures per horizon, the IC series, and per horizon the panel's quantiles (0: none)
    and forward returns (NaN: none) as tables aligned with ``dates`` x ``symbols``."""

    horizons: dict[str, dict[str, Any]]
    ic_series: dict[str, list[list[Any]]]
    dates_skipped: int
    dates: list[str]
    symbols: list[str]
    quantile_table: dict[int, np.ndarray]
    forward_table: dict[int, np.ndarray]

    @property
    def quantiles(self) -> dict[int, pd.Series]:
        """Per horizon, the quantile of each name that has one, by (date, symbol)."""
        out = {}
        dates, symbols = np.asarray(self.dates, dtype=object), np.asarray(self.symbols, object)
        for h, table in self.quantile_table.items():
            rows, cols = np.nonzero(table)
            index = pd.MultiIndex.from_arrays(
                [dates[rows], symbols[cols]], names=["date", "symbol"]
            )
            out[h] = pd.Series(table[rows, cols].astype(int), index=index)
        return out


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
    table = values.astype(float).unstack("symbol") if len(values) else pd.DataFrame()
    table = table.reindex(index=list(dates))
    return compute_table(
        table, forward, quantiles=quantiles, neutralize=neutralize, sectors=sectors
    )


def compute_table(
    table: pd.DataFrame,
    forward: Mapping[int, pd.DataFrame],
    *,
    quantiles: int,
    neutralize: str | None,
    sectors: Mapping[str, str | None],
) -> Figures:
    """The figures of ``table`` (rebalance date x symbol; NaN where there is no value)."""
    dates = [str(d) for d in table.index]
    symbols = [str(s) for s in table.columns]
    values = table.to_numpy(dtype=float, copy=True)
    values[~np.isfinite(values)] = np.nan
    if neutralize == "sector":
        values = _neutralized(values, [sectors.get(s) or "" for s in symbols])
    horizons: dict[str, dict[str, Any]] = {}
    ic_series: dict[str, list[list[Any]]] = {}
    skipped: set[str] = set()
    quantile_table: dict[int, np.ndarray] = {}
    forward_table: dict[int, np.ndarray] = {}
    for h, fwd in forward.items():
        ahead = fwd.reindex(index=dates, columns=symbols).to_numpy(dtype=float)
        forward_table[h] = ahead
        one = _Horizon(values, ahead, dates, quantiles)
        figures = one.figures()
        figures["dates_skipped"] = len(one.skipped)
        skipped.update(one.skipped)
        horizons[str(h)] = figures
        ic_series[str(h)] = one.ic_series
        quantile_table[h] = one.codes
    return Figures(horizons, ic_series, len(skipped), dates, symbols, quantile_table, forward_table)


def _neutralized(values: np.ndarray, groups: list[str]) -> np.ndarray:
    """Each date's values minus the mean of that date's values in the same sector (symbols
    without one form one group)."""
    out = values.copy()
    by_group: dict[str, list[int]] = {}
    for column, group in enumerate(groups):
        by_group.setdefault(group, []).append(column)
    for columns in by_group.values():
        part = out[:, columns]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a date without any: stays NaN
            means = np.nanmean(part, axis=1, keepdims=True)
        out[:, columns] = part - means
    return out


class _Horizon:
    """One horizon's figures over the cross-sections (finite value and forward return)."""

    def __init__(self, values: np.ndarray, ahead: np.ndarray, dates: list[str], quantiles: int):
        self.dates = dates
        self.quantiles = quantiles
        self.member = np.isfinite(values) & np.isfinite(ahead)
        self.values = np.where(self.member, values, np.nan)
        self.ahead = np.where(self.member, ahead, np.nan)
        self.names = self.member.sum(axis=1)
        self.ranks = _row_ranks(self.values)
        self.ic_series = self._ics()
        self.codes, self.skipped = self._cut()

    def _ics(self) -> list[list[Any]]:
        """Spearman's rho per date: Pearson's correlation of the average ranks."""
        ranks_ahead = _row_ranks(self.ahead)
        centre = ((self.names + 1) / 2)[:, None]  # the mean of average ranks, exactly
        a = np.nan_to_num(self.ranks - centre)
        b = np.nan_to_num(ranks_ahead - centre)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        ok = (self.names >= MIN_IC_NAMES) & np.isfinite(rho)
        return [[self.dates[i], float(rho[i])] for i in np.flatnonzero(ok)]

    def _cut(self) -> tuple[np.ndarray, list[str]]:
        """Each name's quantile (1 first; 0 outside any) and the dates that cannot be cut."""
        codes = np.zeros(self.values.shape, dtype=np.int16)
        levels = qcut_levels(self.quantiles)
        skipped = []
        for i in np.flatnonzero(self.names):
            columns = np.flatnonzero(self.member[i])
            cut = qcut_codes(self.values[i, columns], levels)
            if cut is None:
                skipped.append(self.dates[i])
            else:
                codes[i, columns] = cut + 1
        return codes, skipped

    def figures(self) -> dict[str, Any]:
        figures = _ic_figures([ic for _, ic in self.ic_series])
        figures.update(self._quantile_figures())
        return figures

    def _quantile_figures(self) -> dict[str, Any]:
        q = self.quantiles
        rows, columns = np.nonzero(self.codes)
        if not len(rows):
            return {
                "quantile_returns": [None] * q,
                "spread_mean": None,
                "spread_t": None,
                "turnover_top": None,
                "turnover_bottom": None,
                "rank_autocorrelation": None,
            }
        cells = rows * q + (self.codes[rows, columns] - 1)
        size = len(self.dates) * q
        sums = np.bincount(cells, weights=self.ahead[rows, columns], minlength=size)
        counts = np.bincount(cells, minlength=size)
        sums, counts = sums.reshape(-1, q), counts.reshape(-1, q)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts  # a date's mean forward return per quantile; NaN: no names
        held = counts > 0
        returns = [
            _num(means[held[:, k], k].mean()) if held[:, k].any() else None for k in range(q)
        ]
        both = held[:, 0] & held[:, q - 1]
        spread = pd.Series(means[both, q - 1] - means[both, 0], dtype=float)
        kept = np.flatnonzero(self.codes.any(axis=1))
        return {
            "quantile_returns": returns,
            "spread_mean": _num(spread.mean()) if len(spread) else None,
            "spread_t": _t(spread),
            "turnover_top": _turnover(self.codes[kept] == q),
            "turnover_bottom": _turnover(self.codes[kept] == 1),
            "rank_autocorrelation": _rank_autocorrelation(self.ranks[kept]),
        }


def _row_ranks(table: np.ndarray) -> np.ndarray:
    """Each row's average ranks among its numbers (NaN stays NaN)."""
    return pd.DataFrame(table).rank(axis=1, method="average").to_numpy()


def qcut_levels(quantiles: int) -> np.ndarray:
    """The quantile levels ``pandas.qcut`` asks for with an integer ``q`` (the levels that
    are not exact in base 2 rounded up, as it rounds them)."""
    levels = np.linspace(0, 1, quantiles + 1)
    np.putmask(levels, quantiles * levels != np.arange(quantiles + 1), np.nextafter(levels, 1))
    return levels


def qcut_codes(values: np.ndarray, levels: np.ndarray) -> np.ndarray | None:
    """``pandas.qcut(values, q, labels=False)`` for finite ``values``, or None where it
    raises (bin edges not unique): the edges are the values' linear quantiles at
    ``levels``, each bin right-closed, the first one including its lower edge."""
    edges = np.quantile(values, levels, method="linear")
    if (np.diff(edges) == 0).any():
        return None
    ids = np.searchsorted(edges, values, side="left")
    ids[values == edges[0]] = 1
    return ids - 1


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


def _turnover(members: np.ndarray) -> float | None:
    """Mean over dates of the share of names in a quantile that were not in it at the
    previous date on which it had names (alphalens ``quantile_turnover``, ``period=1``);
    ``members`` is the quantile's membership, one row per date."""
    members = members[members.any(axis=1)]
    if len(members) < 2:
        return None
    new = (members[1:] & ~members[:-1]).sum(axis=1)
    return _num(float(np.mean(new / members[1:].sum(axis=1))))


def _rank_autocorrelation(ranks: np.ndarray) -> float | None:
    """Mean over dates of the Pearson correlation of each date's ranks with the previous
    date's, over the names present at both (alphalens ``factor_rank_autocorrelation``)."""
    table = pd.DataFrame(ranks)
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
