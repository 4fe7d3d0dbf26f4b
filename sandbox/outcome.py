"""Turning what a script left behind, or what it raised, into a JSON-safe outcome.

Results are checked by exact type (``type(x) is float``), so a hostile object
never has one of its methods called by us; error messages are the user's own,
bounded, with the user's line number, and never hold our paths.

Every cap on text a script controls (result keys, messages, stdout) counts what is stored:
the text JSON-escaped as the job store writes it (``json.dumps``, ASCII), where a control
character takes 6 bytes and a character outside the BMP 12. Counted in characters, 50 keys of
97 astral characters and 4 KiB of control characters became ~98 KB per symbol once escaped.
"""

from __future__ import annotations

import math
import os
import re
import sys
from json.encoder import encode_basestring_ascii
from types import TracebackType
from typing import Any

from sandbox.compiler import SCRIPT_FILENAME
from sandbox.index_errors import Subscripts, index_message

MAX_RESULT_KEYS = 50
MAX_KEY_LENGTH = 100  # stored bytes (JSON-escaped), as every cap here
# Result keys already found valid (whether a key is valid depends on its text alone): the
# re-check of every run's outcome looks each up once, not its encoding every time.
_GOOD_KEYS: set[str] = set()
_MAX_GOOD_KEYS = 4096
MAX_MESSAGE_LENGTH = 500
MAX_WARNING_LENGTH = 300
_SAFE_INT = 2**53
# The project, the venv and the Python installation (stdlib paths show up in import errors).
# Longest first, so that a path inside another is removed whole.
_OUR_PATHS = tuple(
    sorted(
        {
            p
            for p in (
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                sys.prefix,
                sys.exec_prefix,
                sys.base_prefix,
                sys.base_exec_prefix,
            )
            if p and p != os.sep
        },
        key=len,
        reverse=True,
    )
)
# A whole path under one of them, up to the quote or space that ends it.
_OUR_PATH = re.compile("(?:" + "|".join(map(re.escape, _OUR_PATHS)) + r")[^\s'\"]*")
# The end of CPython's default repr, ``<function sma at 0x7f3a2b1c0d60>``.
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")

# {"value": ..., "error": {...} | None, "stdout": str} and, only when the run had any,
# "warnings": [str, ...] (each once per run: a helper asked for more history than it was given).
Outcome = dict[str, Any]


class InvalidResult(Exception):
    """The script's ``result`` is not something API.md lets us return."""


def error(kind: str, message: str, line: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "message": scrub(message)}
    if line is not None:
        out["line"] = line
    return out


def outcome(
    value: Any = None,
    err: dict[str, Any] | None = None,
    stdout: str = "",
    warnings: list[str] | None = None,
) -> Outcome:
    out: Outcome = {"value": value, "error": err, "stdout": stdout}
    if warnings:
        out["warnings"] = warnings
    return out


def scrub(message: str) -> str:
    """Bound a message (in stored bytes) and drop our paths and heap addresses from it."""
    text = message if type(message) is str else "error"
    text = without_host_details(text[: MAX_MESSAGE_LENGTH * 2])
    return cut_encoded(valid_text(text), MAX_MESSAGE_LENGTH)


def without_host_details(text: str) -> str:
    """``text`` without our file-system paths (an ``OSError`` from a codec the child cannot
    load names the file) nor heap addresses (``<function f at 0x7f...>``): neither is the
    user's business, and an address differs from process to process, where the same script
    on the same data must give the same output."""
    text = _OUR_PATH.sub("<path>", text)
    if " at 0x" in text:
        text = _ADDRESS.sub(">", text)
    return text


def encoded_size(text: str) -> int:
    """Bytes ``text`` takes once JSON-escaped as the job store writes it (without quotes)."""
    return len(encode_basestring_ascii(text)) - 2  # what json.dumps does for a str, in C


def cut_encoded(text: str, limit: int) -> str:
    """The longest start of ``text`` whose encoded size is at most ``limit``."""
    if encoded_size(text) <= limit:
        return text
    low, high = 0, min(len(text), limit)  # every character takes at least one byte
    while low < high:  # the longest prefix that fits: about log2(limit) encodings
        middle = (low + high + 1) // 2
        if encoded_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def valid_text(text: str) -> str:
    """``text`` with lone surrogates replaced: what we hand on must encode as UTF-8."""
    if text.isascii():  # most of it: no surrogate there, and no copy to make
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def check_result(value: Any) -> Any:
    """The JSON value for ``result``, or ``InvalidResult`` saying what is wrong."""
    if value is None:
        return None
    if type(value) is dict:
        if len(value) > MAX_RESULT_KEYS:
            raise InvalidResult(f"result dict has more than {MAX_RESULT_KEYS} keys")
        checked: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str or key not in _GOOD_KEYS:  # the same keys, run after run
                _check_key(key)
            checked[key] = None if item is None else _number(item, key)
        return checked
    return _number(value, None)


def _check_key(key: Any) -> None:
    """``InvalidResult`` unless ``key`` can be a result dict's key (then it is remembered)."""
    if type(key) is not str:
        raise InvalidResult("result dict keys must be strings")
    if not key or len(key) > MAX_KEY_LENGTH or encoded_size(key) > MAX_KEY_LENGTH:
        raise InvalidResult(
            f"result dict keys must be 1 to {MAX_KEY_LENGTH} characters as stored "
            f"(JSON-escaped: a control or non-ASCII character counts 6, one outside "
            f"the BMP 12)"
        )
    if valid_text(key) != key:  # a lone surrogate would break every UTF-8 consumer
        raise InvalidResult("result dict keys must be valid text")
    if len(_GOOD_KEYS) < _MAX_GOOD_KEYS:
        _GOOD_KEYS.add(key)


def _number(value: Any, key: str | None) -> int | float:
    """``value`` as a result number; ``key`` names it in the error (None: the result itself).
    Checked for every symbol, so the name is spelled out only when there is an error."""
    tp = type(value)
    if tp is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        try:
            value = float(value)
        except OverflowError:
            raise InvalidResult(f"{_label(key)} is too large") from None
        tp = float
    if tp is float:
        if not math.isfinite(value):
            raise InvalidResult(f"{_label(key)} must be finite, not {value!r}")
        return value
    if tp is bool:
        raise InvalidResult(
            f"{_label(key)} must be a number, not a bool: write a flag as `1 if ... else 0`"
        )
    raise InvalidResult(
        f"{_label(key)} must be a number, None or a dict of numbers, not {tp.__name__}"
    )


def _label(key: str | None) -> str:
    return "result" if key is None else f"result[{key!r}]"


def script_line(tb: TracebackType | None) -> int | None:
    """The line of the user's script where the exception was last seen."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def from_exception(exc: BaseException, subscripts: Subscripts = ()) -> dict[str, Any]:
    """A per-symbol error from an exception a script raised (or caused); ``subscripts``
    (the script's, compiler.py) let an index past a series' end say its length."""
    kind = type(exc).__name__
    # Scripts cannot define classes, so ``exc`` is a builtin exception (or one of the
    # standard library's) and ``str`` runs no user code; it can still fail (huge ints).
    try:
        message = index_message(exc, subscripts, SCRIPT_FILENAME) or str(exc) or kind
    except Exception:  # a message that cannot be rendered is no reason to lose the outcome
        message = kind
    return error(kind, message, script_line(exc.__traceback__))
