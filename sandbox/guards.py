"""The guards RestrictedPython's compiled code calls: attribute, item, iteration, writes.

Attribute access is an allowlist keyed by the object's exact type, precomputed
once: a script can call the public methods of the builtin value types it
handles (str, numbers, containers), read ``args`` of an exception, and read the
members of our function-only namespaces; nothing else. Because scripts cannot
define classes (the compiler refuses them), every object a script holds is of a
builtin type or ours, so the exact-type check cannot be fooled by a subclass.
The lookup is one set membership test, which keeps guarded code close to plain
``exec()`` speed.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from sandbox.index_errors import describe_index_error

_LINEAR_REGRESSION = type(statistics.linear_regression([0.0, 1.0], [0.0, 1.0]))
# pow's integer results beyond this are no number a script can return (floats end at 1,024
# bits) and take CPU and memory out of proportion: refused before they are computed.
MAX_POW_BITS = 1 << 20


class SecurityError(AttributeError, TypeError):
    """A guard refused something at run time: API.md's per-symbol ``SecurityError``.

    It is also the AttributeError / TypeError plain Python would raise there, so a script's
    own ``except AttributeError`` around an attribute it may not use still behaves as usual.
    """


class FrozenNamespace:
    """A read-only bag of functions standing in for a module (``math``, ``statistics``).

    The real module objects are never handed to scripts: a module leads to its
    own imports and to ``sys``.
    """

    __slots__ = ("_members", "_name")

    def __init__(self, name: str, members: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", MappingProxyType(dict(members)))

    def lookup(self, name: str) -> Any:
        try:
            return self._members[name]
        except KeyError:
            raise AttributeError(f"{self._name} has no function {name!r}") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._name} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self._name} is read-only")

    def __repr__(self) -> str:
        return f"<namespace {self._name}>"


def _public(tp: type, exclude: Iterable[str] = ()) -> set[tuple[type, str]]:
    skip = set(exclude)
    return {(tp, name) for name in dir(tp) if not name.startswith("_") and name not in skip}


_ALLOWED_ATTRIBUTES: frozenset[tuple[type, str]] = frozenset(
    # str.format/format_map walk attribute paths inside the format string.
    _public(str, exclude={"format", "format_map"})
    | _public(int)
    | _public(float)
    | _public(bool)
    | _public(list)
    | _public(tuple)
    | _public(dict)
    | _public(set)
    | _public(frozenset)
    # ``ref``'s read-only mappings (namespace.read_only_reference): get, keys, items, ...
    | _public(MappingProxyType)
    | {(range, "start"), (range, "stop"), (range, "step"), (range, "count"), (range, "index")}
    # dict views: ``mapping`` would hand out a proxy of the dict, which adds nothing.
    | {(type({}.keys()), "isdisjoint"), (type({}.items()), "isdisjoint")}
    # What statistics returns: linear_regression's named pair (a tuple of two floats), and a
    # NormalDist's properties and methods (each returns a float, a list of floats or a new
    # NormalDist); not ``samples`` (random draws: a script's result must be reproducible).
    | {(_LINEAR_REGRESSION, name) for name in ("slope", "intercept", "count", "index")}
    | {
        (statistics.NormalDist, name)
        for name in (
            "mean",
            "median",
            "mode",
            "stdev",
            "variance",
            "cdf",
            "inv_cdf",
            "pdf",
            "overlap",
            "quantiles",
            "zscore",
        )
    }
)

# What analysts reach for out of habit (pandas, numpy) on a series, which is a plain tuple
# here: the helper or builtin that does it (``xs`` stands for the series).
_INSTEAD = {
    "mean": "mean(xs)", "average": "mean(xs)", "std": "stdev(xs) (sample) or pstdev(xs)",
    "stdev": "stdev(xs)", "pstdev": "pstdev(xs)", "var": "stdev(xs) ** 2",
    "sum": "sum(xs)", "max": "max(xs)", "min": "min(xs)", "abs": "abs(x)",
    "round": "round(x, n)", "median": "statistics.median(xs)",
    "quantile": "statistics.quantiles(xs, n=4)", "rolling": "sma(xs, n), highest(xs, n), ...",
    "ewm": "ema(xs, n)", "pct_change": "pct_change(xs, n)", "shift": "shift(xs, n)",
    "diff": "[b - a for a, b in zip(xs, xs[1:])]", "rank": "ts_rank(xs, n)",
    "corr": "corr(xs, ys, n)", "cov": "statistics.covariance(xs, ys)", "sort": "sorted(xs)",
    "sort_values": "sorted(xs)", "append": "list(xs), which has append", "tolist": "list(xs)",
    "to_list": "list(xs)", "iloc": "xs[i] (xs[-1] is the newest)", "head": "xs[:n]",
    "tail": "xs[-n:]", "log": "math.log(x) or log_returns(xs)", "zscore": "zscore(xs)",
    "max_drawdown": "max_drawdown(xs)", "size": "len(xs)", "shape": "len(xs)",
}  # fmt: skip
# The values a script computes with: an attribute these types lack is a plain mistake.
_VALUE_TYPES = frozenset((tuple, list, dict, str, int, float, bool, type(None), set, frozenset))


def guarded_getattr(obj: object, name: str, default: object = None) -> Any:
    """``obj.name`` for scripts: allowed pairs only.

    On the value types, an attribute the type does not have at all is Python's own
    ``AttributeError``, saying what to use instead where we know it (``close.mean()``:
    ``mean(close)``); anything else refused is a ``SecurityError``.
    """
    tp = type(obj)
    if (tp, name) in _ALLOWED_ATTRIBUTES:
        return getattr(obj, name)
    if tp is FrozenNamespace:
        return obj.lookup(name)  # type: ignore[attr-defined]
    if name == "args" and isinstance(obj, BaseException):
        return obj.args
    if tp in _VALUE_TYPES and not hasattr(tp, name):
        message = f"'{tp.__name__}' object has no attribute '{name}'"
        instead = _INSTEAD.get(name)
        if instead is not None:
            message += f": use {instead} instead"
            if "(xs" in instead:
                message += f", e.g. {instead.replace('xs', 'close')}"
        raise AttributeError(message)
    raise SecurityError(f"'{tp.__name__}' object has no attribute '{name}' usable in a script")


def guarded_getitem(obj: Any, key: Any) -> Any:
    """``obj[key]`` as ``_inplaceitem_`` reads it (``counts[k] += 1``); an index past either
    end of a series says how long the series is, as a plain read's does (index_errors.py)."""
    try:
        return obj[key]
    except IndexError:
        message = describe_index_error(obj, key)
        if message is None:
            raise
        raise IndexError(message) from None


_WRITABLE = (dict, list)


def guarded_write(obj: Any) -> Any:
    """Targets of item assignment and ``del``: only the script's own dicts and lists."""
    if type(obj) in _WRITABLE:
        return obj
    raise SecurityError(f"'{type(obj).__name__}' object cannot be modified in a script")


_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    try:
        fn = _INPLACE_OPS[op]
    except KeyError:
        raise TypeError(f"operator {op} is not supported") from None
    return fn(target, value)


def guarded_inplaceitem(op: str, target: Any, key: Any, value: Any) -> None:
    """``target[key] op= value``; ``target`` has passed ``_write_`` (the compiler calls it)."""
    target[key] = guarded_inplacevar(op, guarded_getitem(target, key), value)


def safe_pow(base: Any, exp: Any, mod: Any = None) -> Any:
    """The builtin ``pow``, refusing integer results too large to be of use (``pow(10, 10**9)``
    would take the whole CPU budget and gigabytes): an ``OverflowError`` at once instead."""
    if mod is None and type(exp) is int and exp > 1 and type(base) in (int, bool):
        bits = abs(base).bit_length()
        if bits > 1 and (bits - 1) * exp > MAX_POW_BITS:
            raise OverflowError(f"pow: the result would have more than {MAX_POW_BITS:,} bits")
    return pow(base, exp, mod)


def guarded_apply(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


GUARDS: dict[str, Any] = {
    "_getattr_": guarded_getattr,
    "_getitem_": guarded_getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": guarded_write,
    "_inplacevar_": guarded_inplacevar,
    "_inplaceitem_": guarded_inplaceitem,
    "_apply_": guarded_apply,
}
