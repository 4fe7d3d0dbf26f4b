"""The names a script sees (API.md, "The script contract")."""

from __future__ import annotations

import builtins
import heapq  # noqa: F401 (statistics.mode imports it on first call: a child can open no file)
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from types import FunctionType, MappingProxyType
from typing import Any

from sandbox.guards import GUARDS, FrozenNamespace, safe_pow
from sandbox.helpers import HELPERS
from sandbox.indicators import INDICATORS

# API.md's helper table: helpers.py's and indicators.py's.
ALL_HELPERS: Mapping[str, Any] = MappingProxyType({**HELPERS, **INDICATORS})


def shown_by_name(name: str, function: Callable[..., Any]) -> Any:
    """``function`` as scripts get it: called the same (no extra frame), and shown as
    ``<function sma>`` in every process. A function's own repr holds its heap address, which
    differs from one fork server to the next, so ``str(sma)`` in a result or a key would
    differ too where API.md promises the same result for the same script and data."""
    shown = f"<function {name}>"
    members = {
        "__slots__": (),
        "__call__": staticmethod(function),
        "__repr__": lambda _self: shown,
        "__doc__": function.__doc__,
    }
    # Named "function", as the function was: messages such as "'function' object has no
    # attribute 'x'" read the same.
    return type("function", (), members)()


def _shown_by_name(functions: Mapping[str, Any]) -> dict[str, Any]:
    """Python-level functions wrapped by ``shown_by_name``; builtins (``<built-in function
    sqrt>``) and constants show no address and stay as they are."""
    return {
        name: shown_by_name(name, value) if isinstance(value, FunctionType) else value
        for name, value in functions.items()
    }


SCRIPT_HELPERS: Mapping[str, Any] = MappingProxyType(_shown_by_name(ALL_HELPERS))

SAFE_BUILTIN_NAMES = [
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format",
    "int", "isinstance", "len", "list", "map", "max", "min", "next", "range", "reversed",
    "round", "set", "sorted", "str", "sum", "tuple", "zip",
]  # fmt: skip
# ``pow`` is guards.safe_pow: the builtin, refusing results too large to be any number here.

# The exceptions a script may raise or catch. BaseException, SystemExit, KeyboardInterrupt
# and GeneratorExit are left out: a script has no business with the runner's own control flow.
SAFE_EXCEPTION_NAMES = [
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "FloatingPointError",
    "IndexError", "KeyError", "LookupError", "NameError", "NotImplementedError", "OverflowError",
    "RecursionError", "RuntimeError", "StopIteration", "TypeError", "ValueError",
    "ZeroDivisionError",
]  # fmt: skip

DATA_NAMES = (
    "symbol", "dates", "open", "high", "low", "close", "volume", "info", "params", "ref",
)  # fmt: skip


def _functions_of(module: Any) -> dict[str, Any]:
    """Public functions (and plain float constants) of a module, never the module itself.

    Only the module's own API: ``__all__`` where it has one, and only functions the module
    defines itself. ``dir(statistics)`` also lists what it imported, and ``namedtuple``
    among those would let a script make classes the compiler refuses to let it write.
    """
    members: dict[str, Any] = {}
    for name in getattr(module, "__all__", None) or dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        own_function = (
            callable(value)
            and not isinstance(value, type)
            and getattr(value, "__module__", None) == module.__name__
        )
        if type(value) is float or own_function:
            members[name] = value
    return members


def _safe_builtins() -> dict[str, Any]:
    names = SAFE_BUILTIN_NAMES + SAFE_EXCEPTION_NAMES
    table = {name: getattr(builtins, name) for name in names}
    table["pow"] = safe_pow
    table.update({"None": None, "True": True, "False": False})
    return table


SAFE_BUILTINS: Mapping[str, Any] = _safe_builtins()
MATH = FrozenNamespace("math", _shown_by_name(_functions_of(math)))
# The functions, plus NormalDist: the one class analysts reach for (``inv_cdf`` for a VaR, ``cdf``
# for a probability), usable through guards.py's allowlist of its methods (not ``samples``,
# which draws random numbers, nor ``from_samples``, a class method: ``NormalDist(mean(xs),
# stdev(xs))`` is the same).
STATISTICS = FrozenNamespace(
    "statistics", {**_shown_by_name(_functions_of(statistics)), "NormalDist": statistics.NormalDist}
)


# Every name a script may read without assigning it: what the compiler's name check accepts.
# ``print`` and ``printed`` are RestrictedPython's (it rewrites them to the output collector).
SCRIPT_NAMES: frozenset[str] = frozenset(
    {*SAFE_BUILTINS, *ALL_HELPERS, *DATA_NAMES, "math", "statistics", "print", "printed"}
)  # fmt: skip


def base_globals() -> dict[str, Any]:
    """Globals shared by every symbol of a batch; the runner copies them per symbol.

    ``__builtins__`` is a fresh dict per batch: a script cannot write into it
    (it has no name for it), but a fresh copy keeps even that theoretical path
    from reaching the next batch.
    """
    g: dict[str, Any] = {"__builtins__": dict(SAFE_BUILTINS), "__name__": "script"}
    g.update(GUARDS)
    g.update(SCRIPT_HELPERS)
    g["math"] = MATH
    g["statistics"] = STATISTICS
    return g


NO_REFERENCE: Mapping[str, Any] = MappingProxyType({})


def read_only_reference(
    ref: Mapping[str, Mapping[str, Sequence[Any]]] | None, start: int = 0, stop: int | None = None
) -> Mapping[str, Mapping[str, tuple[Any, ...]]]:
    """``ref`` as a script sees it (API.md, "Reference series"): read-only mappings of tuples,
    cut to the run's window like its own series. Mapping proxies, so nothing a script does
    reaches the next symbol, which shares the same series (guards refuse writes to them)."""
    if not ref:
        return NO_REFERENCE
    return MappingProxyType(
        {
            name: MappingProxyType(
                {key: tuple(values[start:stop]) for key, values in fields.items()}
            )
            for name, fields in ref.items()
        }
    )
