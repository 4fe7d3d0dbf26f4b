"""Exact sums, means and standard deviations of a series' values, finite for finite inputs
even where a plain sum would overflow."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from math import dist, fsum, isfinite, nan, sqrt, ulp
from operator import mul, sub

from sandbox.series_input import Number, present, refuse_non_finite

# Sums that overflow (values near float's maximum) are taken over values scaled by a power of
# two, which is exact, and scaled back: helpers keep finite inputs finite where the answer is.
_DOWN = 2.0**-64
_UP = 2.0**64


def exact_total(name: str, xs: Sequence[Number | None], vals: Sequence[Number]) -> float:
    """Exact sum of ``vals`` (the values of ``xs``), refusing NaN and infinities on the way.

    An exact sum that is finite proves every value finite, so this replaces ``checked_series``'s own
    check. ``fsum`` fails on inf - inf and on ints beyond float range; if the values themselves
    pass, only their sum overflowed, and the plain float sum gives that honest infinity.
    """
    try:
        total = fsum(vals)
    except (ValueError, OverflowError):
        total = nan
    if not isfinite(total):
        refuse_non_finite(name, xs)
        total = fsum(map(mul, vals, repeat(_DOWN))) * _UP  # inf only if it truly is
    return total


def mean_of(name: str, xs: Sequence[Number | None], vals: Sequence[Number]) -> float:
    """Mean of ``vals``, exact sum, finite for finite values (their sum may overflow)."""
    k = len(vals)
    total = exact_total(name, xs, vals)
    if isfinite(total):
        return total / k
    return fsum(map(mul, vals, repeat(_DOWN))) / k * _UP


def mean_stdev(
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
    vals = present(xs, gaps)
    k = len(vals)
    if k == 0:
        return None, None
    mu = mean_of(name, xs, vals)
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
