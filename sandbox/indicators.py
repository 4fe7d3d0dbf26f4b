"""The helpers of API.md's table for indicators and pairs of series: log returns, shifts, true
range and ATR, MACD, rolling correlation, beta and rank, each defined exactly as there.

They follow helpers.py's rules (inputs checked up front with messages naming the helper,
tuples out, nothing mutable a script could reach, a warning when asked for more history than
given) and reuse its checked kernels: a window of sums is each window's own sum (no running
sum that drifts), and a recursive average restarts after a None from a fresh seed. Each is
O(len(xs)) in C-level passes, except ``ts_rank``, which keeps its window sorted (O(log n)
bisection per value, O(n) memmove).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Sequence
from itertools import repeat
from math import fsum, log, sqrt
from operator import gt, mul, sub, truediv

from sandbox.history import short_history
from sandbox.series_input import Number, Series, by_runs, checked_series, window_length
from sandbox.window_kernels import ema_run, window_sums

Values = Sequence[Number | None]


def log_returns(xs: Values) -> Series:
    """``log(xs[i] / xs[i-1])``; None for the first value and where either is None or not > 0."""
    xs, gaps = checked_series("log_returns", xs)
    size = len(xs)
    short_history("log_returns(xs)", 2, size)
    if size < 2:
        return (None,) * size
    newer, older = xs[1:], xs[:-1]
    if not gaps and min(xs) > 0:
        try:
            return (None, *map(log, map(truediv, newer, older)))
        except ValueError:  # a ratio that underflowed to 0 (subnormal prices): one by one
            pass
    return (None, *map(_log_ratio, newer, older))


def _log_ratio(a: Number | None, b: Number | None) -> float | None:
    if a is None or b is None or not a > 0 or not b > 0:
        return None
    ratio = a / b
    return log(ratio) if 0.0 < ratio < float("inf") else log(a) - log(b)


def shift(xs: Values, n: int) -> Series:
    """``xs[i - n]``, None where ``i - n`` is outside the tuple (``n`` may be negative)."""
    xs, _ = checked_series("shift", xs)
    if type(n) is not int:
        raise TypeError(f"shift: n must be an int, not {type(n).__name__}")
    size = len(xs)
    short_history(f"shift(xs, {n})", abs(n) + 1, size)
    if n >= size or -n >= size:
        return (None,) * size
    if n >= 0:
        return (None,) * n + tuple(xs[: size - n])
    return tuple(xs[-n:]) + (None,) * -n


def _bars(name: str, high: object, low: object, close: object) -> tuple[Values, Values, Values]:
    h, _ = checked_series(f"{name} (high)", high)
    lo, _ = checked_series(f"{name} (low)", low)
    c, _ = checked_series(f"{name} (close)", close)
    if not len(h) == len(lo) == len(c):
        raise ValueError(f"{name}: high, low and close must have the same length")
    return h, lo, c


def _true_range(h: Values, lo: Values, c: Values) -> Series:
    if not h:
        return ()
    hh, ll, prev = h[1:], lo[1:], c[:-1]
    if None not in h and None not in lo and None not in c:
        up = map(abs, map(sub, hh, prev))
        down = map(abs, map(sub, ll, prev))
        return (None, *map(max, map(sub, hh, ll), up, down))
    return (None, *map(_range_of_bar, hh, ll, prev))


def _range_of_bar(h: Number | None, lo: Number | None, prev: Number | None) -> Number | None:
    if h is None or lo is None or prev is None:
        return None
    return max(h - lo, abs(h - prev), abs(lo - prev))


def true_range(high: Values, low: Values, close: Values) -> Series:
    """``max(h - l, abs(h - c_prev), abs(l - c_prev))``; None for the first (TA-Lib ``TRANGE``)
    and where any of the three values is None."""
    return _true_range(*_bars("true_range", high, low, close))


def _wilder_run(v: Sequence[Number], n: int) -> list:
    """Wilder's smoothing: the first value the mean of the first ``n``, then
    ``(prev * (n - 1) + x) / n``."""
    size = len(v)
    if n > size:
        return [None] * size
    prev = fsum(v[:n]) / n
    m = n - 1
    out: list = [None] * m
    out.append(prev)
    out += [prev := (prev * m + x) / n for x in v[n:]]
    return out


def atr(high: Values, low: Values, close: Values, n: int = 14) -> Series:
    """Wilder's average true range as TA-Lib ``ATR``: first value at index ``n``, the mean of
    the true ranges at 1..n, then ``(prev * (n - 1) + tr) / n``; None before. A None in the
    bars restarts it: ``n`` fresh true ranges after it seed it again."""
    h, lo, c = _bars("atr", high, low, close)
    n = window_length("atr", n)
    short_history(f"atr(high, low, close, {n})", n + 1, len(h))
    tr = _true_range(h, lo, c)
    if not tr:
        return ()
    body = tr[1:]
    return (None, *by_runs(_wilder_run, body, n, None in body))


def _minus(a: Series, b: Series) -> Series:
    return tuple(None if x is None or y is None else x - y for x, y in zip(a, b, strict=True))


def macd(
    xs: Values, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[Series, Series, Series]:
    """(line, signal, histogram) as TradingView's ``ta.macd``: line = ``ema(xs, fast) -
    ema(xs, slow)`` where both exist; signal = ``ema`` of the line's defined part, aligned;
    histogram = line - signal."""
    xs, gaps = checked_series("macd", xs)
    fast = window_length("macd", fast, what="fast")
    slow = window_length("macd", slow, what="slow")
    signal = window_length("macd", signal, what="signal")
    short_history(f"macd(xs, {fast}, {slow}, {signal})", max(fast, slow) + signal - 1, len(xs))
    quick = by_runs(ema_run, xs, fast, gaps)
    calm = by_runs(ema_run, xs, slow, gaps)
    first = max(fast, slow) - 1
    if not gaps and first < len(xs):
        line = (None,) * first + tuple(map(sub, quick[first:], calm[first:]))
    else:
        line = _minus(quick, calm)
    trigger = by_runs(ema_run, line, signal, None in line)
    return line, trigger, _minus(line, trigger)


# --- pairs of series ------------------------------------------------------------------------------


def _pairs(name: str, xs: object, ys: object, n: object) -> tuple[Values, Values, bool, int]:
    xs, x_gaps = checked_series(name, xs)
    ys, y_gaps = checked_series(name, ys)
    if len(xs) != len(ys):
        raise ValueError(f"{name}: xs and ys must have the same length")
    n = window_length(name, n)
    short_history(f"{name}(xs, ys, {n})", n, len(xs))
    return xs, ys, x_gaps or y_gaps, n


def _by_pair_runs(
    kernel: Callable[[Sequence[Number], Sequence[Number], int], list],
    xs: Values,
    ys: Values,
    n: int,
    gaps: bool,
) -> Series:
    """``kernel`` over each run of consecutive pairs where neither value is None."""
    if not gaps:
        return tuple(kernel(xs, ys, n))
    out: list = [None] * len(xs)
    start = 0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if x is None or y is None:
            if i > start:
                out[start:i] = kernel(xs[start:i], ys[start:i], n)
            start = i + 1
    if len(xs) > start:
        out[start:] = kernel(xs[start:], ys[start:], n)
    return tuple(out)


# A window whose computed n * variance is below this share of its sum of squares may be
# constant, its variance only rounding (at most a few n * 2**-52 of it): such windows are
# checked exactly, with min == max over the window itself.
_MAYBE_FLAT = 1e-12


def _moments(vx: Sequence[Number], vy: Sequence[Number], n: int) -> tuple[list, ...]:
    """Per full window: n * cov(x, y), n * var(x), n * var(y) and whether x or y may be constant.

    Sums of centred values (the run's mean taken out first) keep the cancellation in
    ``sum(x*x) - sum(x)**2 / n`` small: what is left is the window's offset from the run's mean,
    not the price level.
    """
    size = len(vx)
    cx, cy = fsum(vx) / size, fsum(vy) / size
    x = list(map(sub, vx, repeat(cx)))
    y = list(map(sub, vy, repeat(cy)))
    sx, sy = window_sums(x, n), window_sums(y, n)
    sxx = window_sums(list(map(mul, x, x)), n)
    syy = window_sums(list(map(mul, y, y)), n)
    sxy = window_sums(list(map(mul, x, y)), n)
    cov = list(map(sub, sxy, map(truediv, map(mul, sx, sy), repeat(n))))
    var_x = list(map(sub, sxx, map(truediv, map(mul, sx, sx), repeat(n))))
    var_y = list(map(sub, syy, map(truediv, map(mul, sy, sy), repeat(n))))
    clear = all(map(gt, var_x, map(mul, sxx, repeat(_MAYBE_FLAT)))) and all(
        map(gt, var_y, map(mul, syy, repeat(_MAYBE_FLAT)))
    )
    return cov, var_x, var_y, clear


def _flat(v: Sequence[Number], start: int, n: int) -> bool:
    window = v[start : start + n]
    return min(window) == max(window)


def _slow_windows(
    vx: Sequence[Number], vy: Sequence[Number], n: int, moments: tuple[list, ...], corr: bool
) -> list:
    """Window by window, checking each that may be constant exactly (rare: flat stretches)."""
    cov, var_x, var_y, _ = moments
    out: list = [None] * (n - 1)
    for j, (c, a, b) in enumerate(zip(cov, var_x, var_y, strict=True)):
        if _flat(vx, j, n) or _flat(vy, j, n) or a <= 0 or b <= 0:
            out.append(None)
        elif corr:
            r = c / sqrt(a * b)
            out.append(1.0 if r > 1.0 else -1.0 if r < -1.0 else r)
        else:
            out.append(c / b)
    return out


def _moment_run(vx: Sequence[Number], vy: Sequence[Number], n: int, *, corr: bool) -> list:
    """Rolling correlation (``corr``) or beta of one gap-free run of pairs."""
    size = len(vx)
    if n > size or n < 2:
        return [None] * size
    moments = _moments(vx, vy, n)
    cov, var_x, var_y, clear = moments
    if not clear:
        return _slow_windows(vx, vy, n, moments, corr=corr)
    if not corr:
        return [None] * (n - 1) + list(map(truediv, cov, var_y))
    r = map(truediv, cov, map(sqrt, map(mul, var_x, var_y)))
    return [None] * (n - 1) + list(map(max, map(min, r, repeat(1.0)), repeat(-1.0)))


def _corr_run(vx: Sequence[Number], vy: Sequence[Number], n: int) -> list:
    return _moment_run(vx, vy, n, corr=True)


def _beta_run(vx: Sequence[Number], vy: Sequence[Number], n: int) -> list:
    return _moment_run(vx, vy, n, corr=False)


def corr(xs: Values, ys: Values, n: int) -> Series:
    """Pearson correlation of the last ``n`` pairs; None where the window holds a None or
    either side is constant (and for the first ``n - 1``)."""
    xs, ys, gaps, n = _pairs("corr", xs, ys, n)
    return _by_pair_runs(_corr_run, xs, ys, n, gaps)


def beta(xs: Values, ys: Values, n: int) -> Series:
    """Least-squares slope of ``xs`` on ``ys`` over the last ``n`` pairs, ``cov(x, y) /
    var(y)``; None as for ``corr``."""
    xs, ys, gaps, n = _pairs("beta", xs, ys, n)
    return _by_pair_runs(_beta_run, xs, ys, n, gaps)


def _rank_run(v: Sequence[Number], n: int) -> list:
    size = len(v)
    if n > size:
        return [None] * size
    window = sorted(v[:n])
    out: list = [None] * (n - 1)
    append = out.append
    double = 2.0 * n
    x = v[n - 1]
    append((bisect_left(window, x) + bisect_right(window, x) + 1) / double)
    for old, x in zip(v, v[n:]):  # noqa: B905 - v[n:] is the shorter on purpose
        del window[bisect_left(window, old)]
        insort(window, x)
        append((bisect_left(window, x) + bisect_right(window, x) + 1) / double)
    return out


def ts_rank(xs: Values, n: int) -> Series:
    """Percentile rank of each value among the last ``n``: the average rank of ties / n, as
    pandas ``rolling(n).rank(pct=True)``; None where the window holds a None."""
    xs, gaps = checked_series("ts_rank", xs)
    n = window_length("ts_rank", n)
    short_history(f"ts_rank(xs, {n})", n, len(xs))
    return by_runs(_rank_run, xs, n, gaps)


INDICATORS: dict[str, Callable[..., object]] = {
    "log_returns": log_returns,
    "shift": shift,
    "true_range": true_range,
    "atr": atr,
    "macd": macd,
    "corr": corr,
    "beta": beta,
    "ts_rank": ts_rank,
}
