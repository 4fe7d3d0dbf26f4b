"""The parent's re-check of every line a child writes (DESIGN.md layer 5, seen from outside).

The child ran untrusted code. Should that code ever get past the compiler and the guards, it
could write anything to its result pipe, so the worker checks again what layer 5 promises: a
line that is not one the child could honestly have written costs that symbol, nothing more.
"""

from __future__ import annotations

from typing import Any

import orjson

from sandbox.history import MAX_WARNINGS
from sandbox.outcome import (
    MAX_MESSAGE_LENGTH,
    MAX_WARNING_LENGTH,
    InvalidResult,
    Outcome,
    check_result,
    encoded_size,
    outcome,
    valid_text,
)

__all__ = ["checked", "max_line"]


def max_line(stdout_bytes: int) -> int:
    """The longest outcome line a child can honestly write (JSON escapes take up to 6 bytes)."""
    return 6 * (stdout_bytes + MAX_MESSAGE_LENGTH) + 65536


def checked(line: bytes, symbol: str, stdout_bytes: int) -> Outcome | None:
    """The child's outcome for ``symbol``, or None if the line is not one the child could write."""
    try:
        got, result = orjson.loads(line)  # (it refuses bytes that are not UTF-8, NaN, deep nesting)
    except (ValueError, TypeError, RecursionError):  # (orjson.JSONDecodeError is a ValueError)
        return None
    if type(got) is not str or got != symbol or type(result) is not dict:
        return None
    if not {"value", "error", "stdout"} <= set(result) <= {"value", "error", "stdout", "warnings"}:
        return None
    value, err, stdout = result["value"], result["error"], result["stdout"]
    if type(stdout) is not str or valid_text(stdout) != stdout:
        return None
    if encoded_size(stdout) > stdout_bytes:  # the cap counts stored (JSON-escaped) bytes
        return None
    warnings = result.get("warnings")
    if warnings is not None and not _valid_warnings(warnings):
        return None
    if err is not None:
        if value is not None or not _valid_error(err):
            return None
        return outcome(None, err, stdout, warnings)
    try:
        return outcome(check_result(value), None, stdout, warnings)
    except InvalidResult:
        return None


def _valid_warnings(warnings: Any) -> bool:
    return (
        type(warnings) is list
        and 0 < len(warnings) <= MAX_WARNINGS
        and all(
            type(w) is str and 0 < len(w) <= MAX_WARNING_LENGTH and w.isascii() for w in warnings
        )
    )


def _valid_error(err: Any) -> bool:
    if type(err) is not dict or not {"type", "message"} <= set(err) <= {"type", "message", "line"}:
        return False
    kind, message, line = err["type"], err["message"], err.get("line", 1)
    return (
        type(kind) is str
        and 0 < len(kind) <= 100
        and type(message) is str
        and encoded_size(message) <= MAX_MESSAGE_LENGTH
        and valid_text(kind + message) == kind + message
        and type(line) is int
        and line > 0
    )
