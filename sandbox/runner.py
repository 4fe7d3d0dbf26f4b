"""Running one symbol's script in prepared globals and reporting its outcome."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.compiler import CompiledScript
from sandbox.history import take_warnings
from sandbox.namespace import read_only_reference
from sandbox.outcome import InvalidResult, Outcome, check_result, error, from_exception, outcome
from sandbox.output import CappedOutput

_MISSING = object()


@dataclass(frozen=True, slots=True)
class SymbolInput:
    """One run's data (the sandbox knows nothing of the database). The series may be tuples
    or packed arrays; a script always gets tuples.

    ``start``/``stop`` cut the window this run sees out of longer series (an evaluation runs
    one symbol at many dates: its runs share one series, each seeing only the bars up to its
    date); by default a run sees the whole series.
    """

    symbol: str
    dates: tuple[str, ...]
    open: Sequence[float]
    high: Sequence[float]
    low: Sequence[float]
    close: Sequence[float]
    volume: Sequence[int]
    info: dict[str, Any] = field(default_factory=dict)
    start: int = 0
    stop: int | None = None
    # The job's reference series aligned with ``dates`` (name -> field -> values, None where
    # the reference has no bar); runs of a chunk share one such mapping per window.
    ref: Mapping[str, Mapping[str, Sequence[Any]]] | None = None


def _tuple(series: Sequence[Any]) -> tuple[Any, ...]:
    return series if type(series) is tuple else tuple(series)


def _window(series: Sequence[Any], start: int, stop: int | None) -> tuple[Any, ...]:
    """The run's part of ``series`` as a tuple (a tuple's slice is one copy, made in C)."""
    if start == 0 and stop is None:
        return _tuple(series)
    part = series[start:stop]
    return part if type(part) is tuple else tuple(part)


class RunnerAbort(BaseException):  # a signal, not an error a script may see
    """Raised by the sandbox's own limits; never caught as a script error."""


def run_symbol(
    script: CompiledScript,
    shared_globals: dict[str, Any],
    item: SymbolInput,
    params_json: str,
    stdout_limit: int,
) -> Outcome:
    """Execute ``script`` for one symbol; every way it can end becomes an outcome."""
    out = CappedOutput(stdout_limit)
    g = dict(shared_globals)
    start, stop = item.start, item.stop
    g["symbol"] = item.symbol
    g["dates"] = _window(item.dates, start, stop)
    g["open"] = _window(item.open, start, stop)
    g["high"] = _window(item.high, start, stop)
    g["low"] = _window(item.low, start, stop)
    g["close"] = _window(item.close, start, stop)
    g["volume"] = _window(item.volume, start, stop)
    g["info"] = dict(item.info)
    g["ref"] = read_only_reference(item.ref, start, stop)
    # A fresh copy: no symbol sees another's edits (most jobs have none to parse).
    g["params"] = {} if params_json == "{}" else json.loads(params_json)
    g["_print_"] = out.factory
    # RestrictedPython defines ``_print`` at the top of each scope that prints, but a decorator
    # (``@print``) is read in the scope around: there it must exist too.
    g["_print"] = out
    take_warnings()  # nothing of an earlier run's (one that was killed, say)
    try:
        exec(script.code, g)  # noqa: S102 - restricted code in guarded globals; the point of the sandbox
    except RunnerAbort:
        raise
    except BaseException as exc:  # anything the script raises is its own outcome
        err = from_exception(exc, script.subscripts)
        return outcome(None, err, out.text(), take_warnings())
    warnings = take_warnings()
    value = g.get("result", _MISSING)
    if value is _MISSING:
        missing = error("InvalidResult", "the script did not assign result")
        return outcome(None, missing, out.text(), warnings)
    try:
        return outcome(check_result(value), None, out.text(), warnings)
    except InvalidResult as exc:
        return outcome(None, error("InvalidResult", str(exc)), out.text(), warnings)
