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
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence


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
)


def guarded_getattr(obj: object, name: str, default: object = None) -> Any:
    """``obj.name`` for scripts: allowed pairs only; everything else is an AttributeError."""
    tp = type(obj)
    if (tp, name) in _ALLOWED_ATTRIBUTES:
        return getattr(obj, name)
    if tp is FrozenNamespace:
        return obj.lookup(name)  # type: ignore[attr-defined]
    if name == "args" and isinstance(obj, BaseException):
        return obj.args
    raise SecurityError(f"'{tp.__name__}' object has no attribute '{name}' usable in a script")


def guarded_getitem(obj: Any, key: Any) -> Any:
    return obj[key]


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
}


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    try:
        fn = _INPLACE_OPS[op]
    except KeyError:
        raise TypeError(f"operator {op} is not supported") from None
    return fn(target, value)


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
    "_apply_": guarded_apply,
}
