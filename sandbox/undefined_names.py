"""Names a script reads but that nothing gives it: a ``NameError`` at submit, not per symbol.

A typo (``clsoe``) would otherwise pass ``/validate`` and come back as one identical
``NameError`` per symbol. The check is deliberately loose, so that it never refuses a script
that can run: a name counts as defined if the script binds it *anywhere* (any branch, any
function, before or after the read; loop and ``with`` targets, parameters, comprehension
variables, ``except ... as e``, walrus targets, ``def`` names, ``del``), or if the sandbox
provides it (API.md's script contract). Only a name read and bound nowhere is refused.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable

from sandbox.errors import ScriptNameError


def undefined_name(
    tree: ast.Module, source: str, provided: Iterable[str]
) -> ScriptNameError | None:
    """The error for the first name (in reading order) defined nowhere, or None if none is."""
    bound: set[str] = set()
    reads: list[ast.Name] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            reads.append(node)
        else:
            name = _bound_by(node)
            if name:
                bound.add(name)
    known = set(provided)
    missing = [n for n in reads if n.id not in bound and n.id not in known]
    if not missing:
        return None
    first = min(missing, key=lambda n: (n.lineno, n.col_offset))
    choices = sorted((known | bound) - {"_"})
    close = difflib.get_close_matches(first.id, choices, n=3, cutoff=0.7)
    column = _column(source, first.lineno, first.col_offset)
    if close:
        hint = "did you mean " + _either(close) + "?"
    else:
        hint = "it is not assigned anywhere in the script, and the sandbox does not provide it"
    return ScriptNameError(
        f"name `{first.id}` is not defined: {hint}",
        first.lineno,
        column,
        name=first.id,
        suggestions=close,
    )


def _bound_by(node: ast.AST) -> str | None:
    """The name ``node`` binds, if it binds one."""
    if isinstance(node, ast.Name):  # Store and Del: targets of every kind, ``del``, walrus
        return node.id
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.ExceptHandler):
        return node.name
    if isinstance(node, ast.alias):
        return (node.asname or node.name).split(".")[0]
    if isinstance(node, ast.MatchAs | ast.MatchStar):
        return node.name
    if isinstance(node, ast.MatchMapping):
        return node.rest
    return None


def _either(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _column(source: str, line: int, byte_offset: int) -> int:
    """1-based column in characters (the AST counts UTF-8 bytes, the parser's errors characters)."""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not 0 < line <= len(lines):
        return byte_offset + 1
    text = lines[line - 1].encode("utf-8")[:byte_offset]
    return len(text.decode("utf-8", "ignore")) + 1
