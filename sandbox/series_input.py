"""Checking what a script hands a helper, and splitting a series at its gaps (``None``).

The checks run before any computation, with messages naming the helper and never showing our
code; a list or tuple subclass is copied once, so its own methods cannot feed different values
to the check and to the computation (``sandbox.helpers``' rules).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import isfinite
from sys import float_info

_NONE_TYPE = type(None)
_ITEM_TYPES = frozenset((int, float, _NONE_TYPE))
# The largest int that still converts to a float: bigger ones would make float arithmetic fail.
_MAX_INT = int(float_info.max)

Number = int | float
Series = tuple[Number | None, ...]


def checked_series(
    name: str, xs: object, *, finite: bool = True
) -> tuple[Sequence[Number | None], bool]:
    """Check ``xs`` and return it (a private copy for subclasses) and whether it holds ``None``.

    ``finite=False`` leaves the NaN/infinity check to ``moments.exact_total``, for helpers that
    need an exact sum anyway and so get that check for free.
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
            refuse_non_finite(name, xs)
    return xs, gaps


def refuse_non_finite(name: str, xs: Sequence[Number | None]) -> None:
    """Name the first NaN, infinity or too-large int; accept a total that merely overflowed."""
    for i, x in enumerate(xs):
        if type(x) is float and not isfinite(x):
            raise ValueError(f"{name}: xs must hold finite numbers (item {i} is {x})")
        if type(x) is int and not -_MAX_INT <= x <= _MAX_INT:
            raise ValueError(
                f"{name}: xs must hold numbers within float range (item {i} is too large)"
            )


def window_length(name: str, n: object, *, what: str = "n") -> int:
    """Check a window length (``what`` names the argument): an int of at least 1 (``bool`` is
    not a number here)."""
    if type(n) is not int:
        raise TypeError(f"{name}: {what} must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name}: {what} must be at least 1")
    return n


def by_runs(
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


def present(xs: Sequence[Number | None], gaps: bool) -> Sequence[Number]:
    """The values of ``xs`` without its Nones (``xs`` itself when it has none)."""
    return [x for x in xs if x is not None] if gaps else xs
