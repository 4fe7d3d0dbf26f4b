"""The helpers every script sees (API.md, "The script contract"), written for speed and safety.

Scripts call these once per symbol over a few hundred to a few thousand values, so each helper
is O(len(xs)) (or O(len(xs) * n) only for tiny ``n``, where that is faster) and pushes its work
into C-level builtins (``map``, ``accumulate``, ``math.fsum``) wherever it can; the few loops
that are truly recursive (EMA, Wilder's RSI) bind everything they touch to locals.

They are handed to untrusted code, so:

- inputs are checked up front and rejected with messages naming the helper, never showing ours;
- a list or tuple subclass is copied once before use, so its own methods cannot feed different
  values to the check and to the computation;
- the input is never mutated and every series comes back as a tuple;
- nothing here is mutable state a script could reach: no attributes on the functions, only
  constants (``HELPERS`` itself is read by ``sandbox.namespace``, never by scripts).

Missing values: ``None`` marks a missing value. Windowed helpers (``sma``, ``ema``, ``rsi``,
``highest``, ``lowest``) treat each maximal run of consecutive non-``None`` values as its own
series, so a window that holds a ``None`` gives ``None``, and the recursive ``ema`` and ``rsi``
restart after a gap from a fresh seed (see their docstrings). ``pct_change`` reads only the two
values it divides. ``mean``, ``stdev``, ``zscore`` and ``max_drawdown`` skip ``None``.

NaN and infinities are refused (``ValueError``): a script cannot meet them in price data, and
letting them in would make windows, peaks and ranks order-dependent instead of well defined.

What they share lives beside them: the checks (``sandbox.series_input``), the windowed kernels
(``sandbox.window_kernels``), exact sums and spreads (``sandbox.moments``) and the warnings
(``sandbox.history``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import accumulate, repeat
from operator import sub, truediv

from sandbox.history import short_history
from sandbox.moments import mean_stdev
from sandbox.series_input import (
    Number,
    Series,
    by_runs,
    checked_series,
    present,
    window_length,
)
from sandbox.window_kernels import ema_run, highest_run, lowest_run, rsi_run, sma_run


def _pct_change(name: str, xs: object, n: object) -> Series:
    xs, gaps = checked_series(name, xs)
    n = window_length(name, n)
    size = len(xs)
    short_history(f"{name}(xs, {n})" if name == "pct_change" else f"{name}(xs)", n + 1, size)
    if n >= size:
        return (None,) * size
    older = xs[: size - n]
    if not gaps and 0 not in older:
        body = list(map(sub, map(truediv, xs[n:], older), repeat(1.0)))
    else:
        body = [
            None if a is None or not b else a / b - 1.0 for a, b in zip(xs[n:], older, strict=True)
        ]
    return tuple([None] * n + body)


def _windowed(
    name: str,
    kernel: Callable[[Sequence[Number], int], list],
    xs: object,
    n: object,
    *,
    extra: int = 0,
) -> Series:
    """The windowed helpers' one path: check, warn when fewer than ``n + extra`` values came
    (``rsi`` needs one more, for its first change), then ``kernel`` over each gap-free run."""
    xs, gaps = checked_series(name, xs)
    n = window_length(name, n)
    short_history(f"{name}(xs, {n})", n + extra, len(xs))
    return by_runs(kernel, xs, n, gaps)


# --- the helpers --------------------------------------------------------------------------------


def sma(xs: Sequence[Number | None], n: int) -> Series:
    """Simple moving average: mean of the last ``n`` values; None for the first ``n - 1``.

    A window holding a None gives None. Each window's sum comes from its own values (no running
    sum that drifts), so results match summing every window directly.
    """
    return _windowed("sma", sma_run, xs, n)


def ema(xs: Sequence[Number | None], n: int) -> Series:
    """Exponential moving average as TA-Lib and TradingView define it, so results match theirs.

    The first value, at index ``n - 1``, is ``sma(xs, n)`` there; then ``a*x + (1-a)*prev`` with
    ``a = 2/(n+1)``. A None cannot be averaged in, so it restarts the average: the output is None
    at the None and until ``n`` fresh values have come after it, where a new SMA seed starts.
    """
    return _windowed("ema", ema_run, xs, n)


def rsi(xs: Sequence[Number | None], n: int = 14) -> Series:
    """Wilder's relative strength index (0-100), the definition charting tools use.

    The first average gain and loss are plain means of the first ``n`` changes, then each is
    smoothed with ``1/n``: ``avg = (avg*(n-1) + change)/n``. None for the first ``n`` values; 100
    where the average loss is 0. A None restarts it: the output is None at the None and until
    ``n`` fresh changes (``n + 1`` values) have come after it, then new plain means seed it.
    """
    return _windowed("rsi", rsi_run, xs, n, extra=1)


def pct_change(xs: Sequence[Number | None], n: int = 1) -> Series:
    """Change over ``n`` steps, ``xs[i]/xs[i-n] - 1``, as pandas' ``pct_change``.

    None for the first ``n``, and where ``xs[i-n]`` is 0 or either of the two values is None
    (only those two values are read, so a None between them does not matter).
    """
    return _pct_change("pct_change", xs, n)


def returns(xs: Sequence[Number | None]) -> Series:
    """One-step returns, ``pct_change(xs, 1)``: the usual input to volatility and z-scores."""
    return _pct_change("returns", xs, 1)


def highest(xs: Sequence[Number | None], n: int) -> Series:
    """Max of the last ``n`` values (e.g. a breakout level); None for the first ``n - 1``.

    A window holding a None gives None.
    """
    return _windowed("highest", highest_run, xs, n)


def lowest(xs: Sequence[Number | None], n: int) -> Series:
    """Min of the last ``n`` values (e.g. a support level); None for the first ``n - 1``.

    A window holding a None gives None.
    """
    return _windowed("lowest", lowest_run, xs, n)


def mean(xs: Sequence[Number | None]) -> float | None:
    """Arithmetic mean of the values, skipping None (exact sum); None if there are none."""
    xs, gaps = checked_series("mean", xs, finite=False)
    return mean_stdev("mean", xs, gaps)[0]


def stdev(xs: Sequence[Number | None]) -> float | None:
    """Sample standard deviation (n - 1), as ``statistics.stdev`` and pandas, skipping None.

    None with fewer than two values.
    """
    xs, gaps = checked_series("stdev", xs, finite=False)
    return mean_stdev("stdev", xs, gaps)[1]


def pstdev(xs: Sequence[Number | None]) -> float | None:
    """Population standard deviation (n), as ``statistics.pstdev`` (Bollinger bands use it),
    skipping None. None with no values; 0.0 for one."""
    xs, gaps = checked_series("pstdev", xs, finite=False)
    return mean_stdev("pstdev", xs, gaps, ddof=0)[1]


def zscore(xs: Sequence[Number | None]) -> Series:
    """``(x - mean(xs)) / stdev(xs)`` for each value: how unusual each one is.

    None values are skipped in the mean and stdev and stay None. All None when the stdev is
    None or 0 (fewer than two values, or all equal), since no value can then be scored.
    """
    xs, gaps = checked_series("zscore", xs, finite=False)
    mu, sd = mean_stdev("zscore", xs, gaps)
    if not sd:
        return (None,) * len(xs)
    if not gaps:
        return tuple(map(truediv, map(sub, xs, repeat(mu)), repeat(sd)))
    return tuple(None if x is None else (x - mu) / sd for x in xs)


def max_drawdown(xs: Sequence[Number | None]) -> float | None:
    """Worst fall from a running peak, ``min(x / peak - 1)``: a number <= 0, e.g. -0.25.

    None values are skipped. A fall is measured only from a positive peak (a ratio to a peak of
    0 or below means nothing), so values before the first positive one are skipped too. None if
    no value is left; 0.0 for a series that never falls.
    """
    xs, gaps = checked_series("max_drawdown", xs)
    vals = present(xs, gaps)
    start = next((i for i, x in enumerate(vals) if x > 0), None)
    if start is None:
        return None
    vals = vals[start:]
    return min(map(truediv, vals, accumulate(vals, max))) - 1.0


HELPERS: dict[str, Callable[..., object]] = {
    "sma": sma,
    "ema": ema,
    "rsi": rsi,
    "pct_change": pct_change,
    "returns": returns,
    "highest": highest,
    "lowest": lowest,
    "mean": mean,
    "stdev": stdev,
    "pstdev": pstdev,
    "zscore": zscore,
    "max_drawdown": max_drawdown,
}
