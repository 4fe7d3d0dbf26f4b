"""The windowed helpers' kernels over one run of values (no None, no checks: the public
helpers did those), each O(len(v)) in C-level passes or, for tiny windows, shifted slices."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate, repeat
from math import fsum
from operator import add, sub, truediv

from sandbox.series_input import Number

# At or below these windows, n shifted slices combined by one C-level map beat the O(len) block
# algorithm (measured over 252-1260 values); above them the block algorithm wins.
_SMALL_SUM_WINDOW = 6
_SMALL_EXTREME_WINDOW = 5


def window_sums(v: Sequence[Number], n: int) -> list:
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


def sma_run(v: Sequence[Number], n: int) -> list:
    size = len(v)
    if n > size:
        return [None] * size
    return [None] * (n - 1) + list(map(truediv, window_sums(v, n), repeat(n)))


def ema_run(v: Sequence[Number], n: int) -> list:
    size = len(v)
    if n > size:
        return [None] * size
    out = sma_run(v[:n], n)  # the seed is exactly sma(xs, n)[n - 1]
    a = 2.0 / (n + 1)
    b = 1.0 - a
    prev = out[-1]
    # A comprehension appends faster than a loop calling out.append.
    out += [prev := a * x + b * prev for x in v[n:]]
    return out


def rsi_run(v: Sequence[Number], n: int) -> list:
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


def highest_run(v: Sequence[Number], n: int) -> list:
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


def lowest_run(v: Sequence[Number], n: int) -> list:
    """Min of each window: the max of the negated values, negated back (exact in floating
    point), so one algorithm serves both at the cost of two cheap passes."""
    return [None if x is None else -x for x in highest_run([-x for x in v], n)]
