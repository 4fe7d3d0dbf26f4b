"""An ``IndexError`` that says how long the series was, made once, when a run ends in one.

A script's ``xs[i]`` is a plain subscript (compiler.py): a guard call on every read cost a
typical script a fifth of its time, and checked nothing, every type a script can reach being
indexable. What that guard added was its message: the length of the series and, reaching
back past its start, how to ask for more history. That message is made here instead, from
the run's traceback: the failing instruction's source span names the subscript, and
``subscript_operands`` kept, for each subscript whose container and index are names, items of
names and integer arithmetic, how to read them again. They are read from the failing frame
with lookups and integer arithmetic only: no code of the script runs again.
"""

from __future__ import annotations

import ast
import dis
from collections.abc import Mapping
from types import FrameType, MappingProxyType, TracebackType
from typing import Any

# One operand, as nested tuples (marshal sends them to the child): ("name", id),
# ("const", int | str), ("neg", operand), ("op", "+", left, right), ("item", of, key).
Operand = tuple[Any, ...]
# Per subscript: (line, end line, column, end column) -> (container, index).
Subscripts = tuple[tuple[tuple[int, int, int, int], Operand, Operand], ...]

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
              ast.Pow: "**"}  # fmt: skip
_MAX_EXPONENT = 64  # ``10**6`` is an index a script writes; ``10**10**8`` is not worth a message
_MAX_BASE_BITS = 32
_BINARY_SUBSCR = dis.opmap["BINARY_SUBSCR"]
_INDEXABLE = (tuple, list, dict, MappingProxyType)


class _Unreadable(Exception):
    """An operand that cannot be read again without running code: no better message."""


def subscript_operands(tree: ast.AST) -> Subscripts:
    """How to read again the container and index of each subscript that can fail with an
    ``IndexError`` and whose operands are simple enough (see the module's docstring)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Subscript) or not isinstance(node.ctx, ast.Load):
            continue
        container, index = _operand(node.value), _operand(node.slice)
        if container is not None and index is not None:
            span = (node.lineno, node.end_lineno or node.lineno, node.col_offset,
                    node.end_col_offset or node.col_offset)  # fmt: skip
            found.append((span, container, index))
    return tuple(found)


def _operand(node: ast.AST) -> Operand | None:
    if isinstance(node, ast.Name):
        return ("name", node.id)
    if isinstance(node, ast.Constant) and type(node.value) in (int, str):
        return ("const", node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _operand(node.operand)
        return None if inner is None else ("neg", inner)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _operand(node.left), _operand(node.right)
        if left is None or right is None:
            return None
        return ("op", _OPERATORS[type(node.op)], left, right)
    if isinstance(node, ast.Subscript):
        of, key = _operand(node.value), _operand(node.slice)
        return None if of is None or key is None else ("item", of, key)
    return None


def index_message(exc: BaseException, subscripts: Subscripts, script_filename: str) -> str | None:
    """The message for ``exc`` if it is an ``IndexError`` of a plain subscript of a series
    or list in the script, with its length; None where Python's own must do."""
    if type(exc) is not IndexError or not subscripts:
        return None
    last: TracebackType | None = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == script_filename:
            last = tb
        tb = tb.tb_next
    if last is None or last.tb_next is not None:  # raised inside a helper, not by a subscript
        return None
    code = last.tb_frame.f_code
    if code.co_code[last.tb_lasti] != _BINARY_SUBSCR:
        return None
    span = list(code.co_positions())[last.tb_lasti // 2]
    for where, container, index in subscripts:
        if where == span:
            try:
                obj = _read(container, last.tb_frame)
                key = _read(index, last.tb_frame)
            except _Unreadable:
                return None
            return describe_index_error(obj, key)
    return None


def describe_index_error(obj: Any, key: Any) -> str | None:
    """What ``obj[key]`` reached past, for a tuple (a series) or a list and an int index out
    of its range; None otherwise."""
    tp = type(obj)
    if type(key) is not int or (tp is not tuple and tp is not list) or -len(obj) <= key < len(obj):
        return None
    size = len(obj)
    series = tp is tuple
    kind = "series" if series else "list"
    if key < 0:
        message = f"index {key} reaches back past the start: this {kind} holds {size} values"
        if series:
            message += (
                f" (one per bar: the window holds {size} bars); ask for more history with "
                f"`lookback` (up to 2,520 trading days)"
            )
        return message
    return f"index {key} is past the end: this {kind} holds {size} values (0 to {size - 1})"


def _read(operand: Operand, frame: FrameType) -> Any:
    kind = operand[0]
    if kind == "const":
        return operand[1]
    if kind == "name":
        return _lookup(operand[1], frame.f_locals, frame.f_globals)
    if kind == "neg":
        return -_integer(_read(operand[1], frame))
    if kind == "op":
        return _arithmetic(operand[1], _integer(_read(operand[2], frame)),
                           _integer(_read(operand[3], frame)))  # fmt: skip
    if kind == "item":
        of, key = _read(operand[1], frame), _read(operand[2], frame)
        if type(of) not in _INDEXABLE or type(key) not in (int, str):
            raise _Unreadable
        try:
            return of[key]
        except (LookupError, TypeError):
            raise _Unreadable from None
    raise _Unreadable


def _lookup(name: str, *scopes: Mapping[str, Any]) -> Any:
    for scope in scopes:
        if name in scope:
            return scope[name]
    raise _Unreadable


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise _Unreadable
    return value


def _arithmetic(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "**":
        if not 0 <= b <= _MAX_EXPONENT or a.bit_length() > _MAX_BASE_BITS:
            raise _Unreadable
        return a**b
    if b == 0:
        raise _Unreadable
    return a // b if op == "//" else a % b
