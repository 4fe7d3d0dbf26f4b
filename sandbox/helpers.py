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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import accumulate, repeat
from math import dist, fsum, isfinite, nan, sqrt, ulp
from operator import add, mul, sub, truediv
from sys import float_info

_NONE_TYPE = type(None)
_ITEM_TYPES = frozenset((int, float, _NONE_TYPE))
# The largest int that still converts to a float: bigger ones would make float arithmetic fail.
_MAX_INT = int(float_info.max)
# At or below these windows, n shifted slices combined by one C-level map beat the O(len) block
# algorithm (measured over 252-1260 values); above them the block algorithm wins.
_SMALL_SUM_WINDOW = 6
_SMALL_EXTREME_WINDOW = 5

# Sums that overflow (values near float's maximum) are taken over values scaled by a power of
# two, which is exact, and scaled back: helpers keep finite inputs finite where the answer is.
_DOWN = 2.0**-64
_UP = 2.0**64
# At most this many distinct warnings per run: a script calling helpers in a loop with a
# different window each time must not turn its outcome into a list of them.
MAX_WARNINGS = 10

Number = int | float
Series = tuple[Number | None, ...]


# --- warnings: a helper asked for more history than it was given -------------------------------
# One process runs one script at a time (a sandbox child, or a benchmark), so this run's
# warnings are a module-level list: the runner empties it before a run and takes it after.
# Scripts cannot reach it (no attribute of a helper is readable, and no module is given).

_warnings: list[str] = []


def take_warnings() -> list[str]:
    """This run's warnings, each once, in the order they first happened; empties the list."""
    taken = list(_warnings)
    _warnings.clear()
    return taken


def _short_history(call: str, need: int, size: int) -> None:
    """Note that ``call`` needed ``need`` values of history and got only ``size``."""
    if need <= size:
        return
    message = (
        f"{call} needs at least {need} values of history and was given fewer, so it gives only "
        f"None: a longer `lookback` gives more bars"
    )[:300]  # outcome.MAX_WARNING_LENGTH (a window of a thousand digits is still one line)
    if message not in _warnings and len(_warnings) < MAX_WARNINGS:
        _warnings.append(message)


# --- input checking -----------------------------------------------------------------------------


def _series(name: str, xs: object, *, finite: bool = True) -> tuple[Sequence[Number | None], bool]:
    """Check ``xs`` and return it (a private copy for subclasses) and whether it holds ``None``.

    ``finite=False`` leaves the NaN/infinity check to ``_total``, for helpers that need an exact
    sum anyway and so get that check for free.
    """
    if type(xs) is not list and type(xs) is not tuple:
        if not isinstance(xs, (list, tuple)):
            raise TypeError(f"{name}: xs must be a list or tuple of numbers")
        xs = tuple(xs)
    types = list(map(type, xs))
    if types.count(float) == len(types):
        gaps = False  # all floats, the usual price series: one cheap pass settles it
    else:
        kinds = set(types)
        if not kinds <= _ITEM_TYPES:
            for i, x in enumerate(xs):
                if type(x) not in _ITEM_TYPES:
                    raise TypeError(
                        f"{name}: xs must hold only numbers or None "
                        f"(item {i} is {type(x).__name__})"
                    )
        gaps = _NONE_TYPE in kinds
    if finite:
        # A finite total proves every value is finite: one NaN or infinity would poison it.
        # With gaps, dropping falsy items skips None (and zeros, which cannot matter) in C.
        try:
            total_is_finite = isfinite(sum(filter(None, xs)) if gaps else sum(xs))
        except OverflowError:
            total_is_finite = False
        if not total_is_finite:
            _refuse_non_finite(name, xs)
    return xs, gaps


def _refuse_non_finite(name: str, xs: Sequence[Number | None]) -> None:
    """Name the first NaN, infinity or too-large int; accept a total that merely overflowed."""
    for i, x in enumerate(xs):
        if type(x) is float and not isfinite(x):
            raise ValueError(f"{name}: xs must hold finite numbers (item {i} is {x})")
        if type(x) is int and not -_MAX_INT <= x <= _MAX_INT:
            raise ValueError(
                f"{name}: xs must hold numbers within float range (item {i} is too large)"
            )


def _window(name: str, n: object) -> int:
    """Check a window length: an int of at least 1 (``bool`` is not a number here)."""
    if type(n) is not int:
        raise TypeError(f"{name}: n must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name}: n must be at least 1")
    return n


def _by_runs(
    kernel: Callable[[Sequence[Number], int], list], xs: Sequence[Number | None], n: int, gaps: bool
) -> Series:
    """Apply ``kernel`` to each run of consecutive non-None values; None elsewhere."""
    if not gaps:
        return tuple(kernel(xs, n))
    out: list = [None] * len(xs)
    start = 0
    for i, x in enumerate(xs):
        if x is None:
            if i > start:
                out[start:i] = kernel(xs[start:i], n)
            start = i + 1
    if len(xs) > start:
        out[start:] = kernel(xs[start:], n)
    return tuple(out)


def _present(xs: Sequence[Number | None], gaps: bool) -> Sequence[Number]:
    """The values of ``xs`` without its Nones (``xs`` itself when it has none)."""
    return [x for x in xs if x is not None] if gaps else xs


def _total(name: str, xs: Sequence[Number | None], vals: Sequence[Number]) -> float:
    """Exact sum of ``vals`` (the values of ``xs``), refusing NaN and infinities on the way.

    An exact sum that is finite proves every value finite, so this replaces ``_series``'s own
    check. ``fsum`` fails on inf - inf and on ints beyond float range; if the values themselves
    pass, only their sum overflowed, and the plain float sum gives that honest infinity.
    """
    try:
        total = fsum(vals)
    except (ValueError, OverflowError):
        total = nan
    if not isfinite(total):
        _refuse_non_finite(name, xs)
        total = fsum(map(mul, vals, repeat(_DOWN))) * _UP  # inf only if it truly is
    return total


def _mean_of(name: str, xs: Sequence[Number | None], vals: Sequence[Number]) -> float:
    """Mean of ``vals``, exact sum, finite for finite values (their sum may overflow)."""
    k = len(vals)
    total = _total(name, xs, vals)
    if isfinite(total):
        return total / k
    return fsum(map(mul, vals, repeat(_DOWN))) / k * _UP


# --- run kernels (no None, no checks: the public functions did those) ---------------------------


def _window_sums(v: Sequence[Number], n: int) -> list:
    """Sum of each full window of ``n`` values, each computed from that window's values only.

    A running sum (add the new value, subtract the old) drifts: after a large value leaves, its
    rounding error stays in every later sum. Here each sum is built from the window itself, so the
    accuracy is that of summing the window directly, yet the work is O(len(v)): windows are split
    at block boundaries (blocks of ``n``) into a block suffix plus a block prefix, both computed
    once per block with ``accumulate`` (van Herk / Gil-Werman, used for sums).
    """
    size = len(v)
    m = size - n + 1
    if n <= _SMALL_SUM_WINDOW:
        sums = v[:m]
        for k in range(1, n):
            sums = list(map(add, sums, v[k : k + m]))
        return list(sums)
    suffix: list = []
    prefix: list = []
    full_end = size - size % n
    for b in range(0, full_end, n):
        block = v[b : b + n]
        suffix.extend(reversed(list(accumulate(reversed(block)))))
        prefix.extend(accumulate(block[:-1]))
        # A window starting at a block start is that whole block: its suffix sum alone.
        prefix.append(0)
    prefix.extend(accumulate(v[full_end:]))
    return list(map(add, suffix[:m], prefix[n - 1 :]))


def _sma_run(v: Sequence[Number], n: int) -> list:
    size = len(v)
    if n > size:
        return [None] * size
    return [None] * (n - 1) + list(map(truediv, _window_sums(v, n), repeat(n)))


def _ema_run(v: Sequence[Number], n: int) -> list:
    size = len(v)
    if n > size:
        return [None] * size
    out = _sma_run(v[:n], n)  # the seed is exactly sma(xs, n)[n - 1]
    a = 2.0 / (n + 1)
    b = 1.0 - a
    prev = out[-1]
    # A comprehension appends faster than a loop calling out.append.
    out += [prev := a * x + b * prev for x in v[n:]]
    return out


def _rsi_run(v: Sequence[Number], n: int) -> list:
    size = len(v)
    if size <= n:
        return [None] * size
    changes = list(map(sub, v[1:], v[:-1]))
    first = changes[:n]
    gain = fsum(c for c in first if c > 0) / n
    loss = fsum(-c for c in first if c < 0) / n
    out: list = [None] * n
    append = out.append
    append(100.0 - 100.0 / (1.0 + gain / loss) if loss else 100.0)
    m = n - 1
    for c in changes[n:]:
        if c > 0:
            gain = (gain * m + c) / n
            loss = loss * m / n
        else:
            gain = gain * m / n
            loss = (loss * m - c) / n
        append(100.0 - 100.0 / (1.0 + gain / loss) if loss else 100.0)
    return out


def _highest_run(v: Sequence[Number], n: int) -> list:
    """Max of each window in O(len(v)), van Herk / Gil-Werman: per block of ``n`` values, a
    running max from each end; window i is then max(suffix[i], prefix[i + n - 1]).

    Inline comparisons, not ``max()`` calls: they are twice as fast here, and this beat a
    monotonic deque by 1.5-2x on both rising and falling series.
    """
    size = len(v)
    if n > size:
        return [None] * size
    m = size - n + 1
    if n == 1:
        return list(v)
    if n <= _SMALL_EXTREME_WINDOW:
        return [None] * (n - 1) + list(map(max, *[v[k : k + m] for k in range(n)]))
    suffix: list = []
    prefix: list = []
    add_prefix = prefix.append
    for b in range(0, size, n):
        block = v[b : b + n]
        part = []
        add_part = part.append
        cur = block[-1]
        for x in reversed(block):
            cur = x if x > cur else cur
            add_part(cur)
        part.reverse()
        suffix += part
        cur = block[0]
        for x in block:
            cur = x if x > cur else cur
            add_prefix(cur)
    return [None] * (n - 1) + [
        a if a >= b else b for a, b in zip(suffix[:m], prefix[n - 1 :], strict=True)
    ]


def _lowest_run(v: Sequence[Number], n: int) -> list:
    """Min of each window: the max of the negated values, negated back (exact in floating
    point), so one algorithm serves both at the cost of two cheap passes."""
    return [None if x is None else -x for x in _highest_run([-x for x in v], n)]


def _mean_stdev(
    name: str, xs: Sequence[Number | None], gaps: bool, ddof: int = 1
) -> tuple[float | None, float | None]:
    """Mean and standard deviation (sample with ``ddof=1``, population with 0) of the values of
    ``xs``, about as exact as ``statistics.stdev`` (which uses fractions and is ~10x slower):
    corrected two-pass.

    ``math.dist`` to the mean gives sqrt(sum(d*d)) in C without overflow or underflow; the
    correction ``(sum d)**2 / k`` removes what the rounding of the mean itself adds, which
    matters when the spread is tiny next to the values (e.g. 1e15 + noise). Values near
    float's maximum, whose differences overflow, are scaled by a power of two (exactly).
    """
    vals = _present(xs, gaps)
    k = len(vals)
    if k == 0:
        return None, None
    mu = _mean_of(name, xs, vals)
    if k <= ddof:
        return mu, None
    if k == 1:
        return mu, 0.0
    norm = dist(vals, [mu] * k)
    scale = 1.0
    if not isfinite(norm):
        vals = list(map(mul, vals, repeat(_DOWN)))
        norm = dist(vals, [mu * _DOWN] * k)
        mu_scaled, scale = mu * _DOWN, _UP
    else:
        mu_scaled = mu
    if not norm:
        return mu, 0.0
    sd = norm / sqrt(k - ddof)
    # Rounding mu by d inflates the variance by about (d / sd)**2 relative: below 1e-14 when
    # mu's last bit is under 1e-7 of sd, as for any real price or return series. Skip it then.
    if ulp(mu_scaled) < 1e-7 * sd:
        return mu, sd * scale
    r = sum(map(sub, vals, repeat(mu_scaled))) / norm
    return mu, norm * sqrt(max(0.0, 1.0 - r * r / k) / (k - ddof)) * scale


def _pct_change(name: str, xs: object, n: object) -> Series:
    xs, gaps = _series(name, xs)
    n = _window(name, n)
    size = len(xs)
    _short_history(f"{name}(xs, {n})" if name == "pct_change" else f"{name}(xs)", n + 1, size)
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


# --- the helpers --------------------------------------------------------------------------------


def sma(xs: Sequence[Number | None], n: int) -> Series:
    """Simple moving average: mean of the last ``n`` values; None for the first ``n - 1``.

    A window holding a None gives None. Each window's sum comes from its own values (no running
    sum that drifts), so results match summing every window directly.
    """
    xs, gaps = _series("sma", xs)
    n = _window("sma", n)
    _short_history(f"sma(xs, {n})", n, len(xs))
    return _by_runs(_sma_run, xs, n, gaps)


def ema(xs: Sequence[Number | None], n: int) -> Series:
    """Exponential moving average as TA-Lib and TradingView define it, so results match theirs.

    The first value, at index ``n - 1``, is ``sma(xs, n)`` there; then ``a*x + (1-a)*prev`` with
    ``a = 2/(n+1)``. A None cannot be averaged in, so it restarts the average: the output is None
    at the None and until ``n`` fresh values have come after it, where a new SMA seed starts.
    """
    xs, gaps = _series("ema", xs)
    n = _window("ema", n)
    _short_history(f"ema(xs, {n})", n, len(xs))
    return _by_runs(_ema_run, xs, n, gaps)


def rsi(xs: Sequence[Number | None], n: int = 14) -> Series:
    """Wilder's relative strength index (0-100), the definition charting tools use.

    The first average gain and loss are plain means of the first ``n`` changes, then each is
    smoothed with ``1/n``: ``avg = (avg*(n-1) + change)/n``. None for the first ``n`` values; 100
    where the average loss is 0. A None restarts it: the output is None at the None and until
    ``n`` fresh changes (``n + 1`` values) have come after it, then new plain means seed it.
    """
    xs, gaps = _series("rsi", xs)
    n = _window("rsi", n)
    _short_history(f"rsi(xs, {n})", n + 1, len(xs))
    return _by_runs(_rsi_run, xs, n, gaps)


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
    xs, gaps = _series("highest", xs)
    n = _window("highest", n)
    _short_history(f"highest(xs, {n})", n, len(xs))
    return _by_runs(_highest_run, xs, n, gaps)


def lowest(xs: Sequence[Number | None], n: int) -> Series:
    """Min of the last ``n`` values (e.g. a support level); None for the first ``n - 1``.

    A window holding a None gives None.
    """
    xs, gaps = _series("lowest", xs)
    n = _window("lowest", n)
    _short_history(f"lowest(xs, {n})", n, len(xs))
    return _by_runs(_lowest_run, xs, n, gaps)


def mean(xs: Sequence[Number | None]) -> float | None:
    """Arithmetic mean of the values, skipping None (exact sum); None if there are none."""
    xs, gaps = _series("mean", xs, finite=False)
    return _mean_stdev("mean", xs, gaps)[0]


def stdev(xs: Sequence[Number | None]) -> float | None:
    """Sample standard deviation (n - 1), as ``statistics.stdev`` and pandas, skipping None.

    None with fewer than two values.
    """
    xs, gaps = _series("stdev", xs, finite=False)
    return _mean_stdev("stdev", xs, gaps)[1]


def pstdev(xs: Sequence[Number | None]) -> float | None:
    """Population standard deviation (n), as ``statistics.pstdev`` (Bollinger bands use it),
    skipping None. None with no values; 0.0 for one."""
    xs, gaps = _series("pstdev", xs, finite=False)
    return _mean_stdev("pstdev", xs, gaps, ddof=0)[1]


def zscore(xs: Sequence[Number | None]) -> Series:
    """``(x - mean(xs)) / stdev(xs)`` for each value: how unusual each one is.

    None values are skipped in the mean and stdev and stay None. All None when the stdev is
    None or 0 (fewer than two values, or all equal), since no value can then be scored.
    """
    xs, gaps = _series("zscore", xs, finite=False)
    mu, sd = _mean_stdev("zscore", xs, gaps)
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
    xs, gaps = _series("max_drawdown", xs)
    vals = _present(xs, gaps)
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
