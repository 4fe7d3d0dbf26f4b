"""Forward returns (API.md), one symbol at a time, on the job's calendar.

``c(s, cal[i+h]) / c(s, cal[i]) - 1`` with ``c(s, t)`` the last close of ``s`` on or before
``t``: it needs only the symbol's own closes and the calendar, so each evaluation chunk works
out its symbols' from the bars it loaded anyway (and the closes after the last rebalance
date) and stores them beside the panel. The job's end then reads a few hundred packed rows
instead of reloading every close of every symbol (a third of a second, with nothing else to
do on the other cores). The job's end computes here, the same way, what no chunk stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from operator import itemgetter

import numpy as np
import pandas as pd

_PACKED = np.dtype("<f8")  # little-endian float64, whatever the machine: never pickled


class ForwardReturns:
    """The rebalance dates' forward returns of one symbol at a time, as a (horizons x dates)
    float array (NaN: undefined), for a fixed calendar."""

    def __init__(self, calendar: Sequence[str], dates: Sequence[str], horizons: Sequence[int]):
        self.calendar = np.asarray(calendar, dtype=str)
        self.horizons = list(horizons)
        self.dates = list(dates)
        wanted = np.asarray(self.dates, dtype=str)
        at = np.searchsorted(self.calendar, wanted)
        found = at < len(self.calendar)
        found[found] = self.calendar[at[found]] == wanted[found]
        self._at = np.where(found, at, -1)  # a rebalance date off the calendar: no return
        self.shape = (len(self.horizons), len(self.dates))

    def of(self, days: Sequence[str], closes: Sequence[float | None]) -> np.ndarray:
        """The forward returns of a symbol with these bars (dates sorted, oldest first); a
        bar without a close is skipped, so the close before it carries forward."""
        price = np.asarray(closes, dtype=float)  # None: NaN
        known = ~np.isnan(price)
        day = np.asarray(days, dtype=str)[known]
        price = price[known]
        out = np.full(self.shape, np.nan)
        if not len(price):
            return out
        last = np.searchsorted(day, self.calendar, side="right") - 1  # the close on or before
        on_calendar = np.where(last >= 0, price[np.maximum(last, 0)], np.nan)
        for row, h in enumerate(self.horizons):
            ahead = self._at + h
            ok = (self._at >= 0) & (ahead < len(self.calendar))
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero close: inf, as pandas
                out[row, ok] = on_calendar[ahead[ok]] / on_calendar[self._at[ok]] - 1
        return out

    def pack(self, returns: np.ndarray) -> bytes:
        return returns.astype(_PACKED).tobytes()

    def unpack(self, raw: bytes) -> np.ndarray | None:
        """A stored row set, or None when it is not of this job's shape."""
        if len(raw) != self.shape[0] * self.shape[1] * _PACKED.itemsize:
            return None
        return np.frombuffer(raw, dtype=_PACKED).reshape(self.shape).astype(float)

    def of_closes(self, closes: Iterable[tuple[str, str, float | None]]) -> dict[str, np.ndarray]:
        """Each symbol's forward returns from (symbol, date, close) rows in any order."""
        return {s: self.of(days, prices) for s, (days, prices) in _by_symbol(closes).items()}

    def of_series(
        self,
        series: Mapping[str, tuple[Sequence[str], Sequence[float | None]]],
        later: Iterable[tuple[str, str, float | None]],
        symbols: Sequence[str],
    ) -> dict[str, np.ndarray]:
        """Each of ``symbols``' forward returns from its bars (dates, closes) and the closes
        ``later`` than them (rows in any order); all NaN for a symbol with neither."""
        after = _by_symbol(later)
        out = {}
        for symbol in symbols:
            days, closes = series.get(symbol, ((), ()))
            if symbol in after:
                more_days, more_closes = after[symbol]
                days, closes = [*days, *more_days], [*closes, *more_closes]
            out[symbol] = self.of(days, closes)
        return out

    def tables(
        self, returns: dict[str, np.ndarray], symbols: Sequence[str]
    ) -> dict[int, pd.DataFrame]:
        """Per horizon, a (rebalance date x symbol) frame; NaN for a symbol without any."""
        block = np.full((len(self.horizons), len(self.dates), len(symbols)), np.nan)
        for column, symbol in enumerate(symbols):
            if symbol in returns:
                block[:, :, column] = returns[symbol]
        return {
            h: pd.DataFrame(block[row], index=self.dates, columns=list(symbols))
            for row, h in enumerate(self.horizons)
        }


def _by_symbol(
    rows: Iterable[tuple[str, str, float | None]],
) -> dict[str, tuple[tuple[str, ...], tuple[float | None, ...]]]:
    """(symbol, date, close) rows in any order as each symbol's dates and closes, by date."""
    out = {}
    for symbol, group in groupby(sorted(rows, key=itemgetter(0, 1)), key=itemgetter(0)):
        _, days, closes = zip(*group, strict=True)
        out[symbol] = (days, closes)
    return out


def forward_returns(
    closes: Iterable[tuple[str, str, float | None]], dates: Sequence[str], horizons: Sequence[int]
) -> dict[int, pd.DataFrame]:
    """Per horizon, a frame (rebalance date x symbol, symbols sorted) of forward returns on
    the calendar of the dates any of these closes has (API.md's, when they are every close
    of the job's symbols up to the last date a return reaches)."""
    rows = list(closes)
    calendar = sorted({day for _, day, _ in rows})
    forward = ForwardReturns(calendar, dates, horizons)
    returns = forward.of_closes(rows)
    return forward.tables(returns, sorted(returns))
