"""Compiling user code with RestrictedPython, plus the checks it leaves to run time.

RestrictedPython compiles ``import`` statements and class bodies and only fails
when they run; API.md promises a ``SecurityError`` at submit, so a policy pass
over the AST refuses them first. Two more passes run before compiling: one bounds
what the compiler would duplicate (compile_budget.py: nested ``finally`` blocks),
one refuses names that nothing defines (undefined_names.py: API.md's "Checked at
submit"). Compiled code is cached by the code's text (the cache key is its hash),
so a worker compiles each script once.
"""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_exec

from sandbox.compile_budget import check_compile_budget
from sandbox.errors import ScriptSecurityError, ScriptSyntaxError
from sandbox.index_errors import Subscripts, subscript_operands
from sandbox.namespace import SCRIPT_NAMES
from sandbox.undefined_names import undefined_name

SCRIPT_FILENAME = "<script>"
MAX_NESTING = 100  # deeper than any real script; keeps the compiler's own recursion bounded

_RP_LINE = re.compile(r"^Line (\d+):\s*(.*)$", re.DOTALL)

# Statements RestrictedPython would compile but that have no place in a per-symbol calculation.
_FORBIDDEN_NODES: dict[type, str] = {
    ast.Import: "import statements are not allowed",
    ast.ImportFrom: "import statements are not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.AsyncFunctionDef: "async functions are not allowed",
    ast.AsyncFor: "async statements are not allowed",
    ast.AsyncWith: "async statements are not allowed",
    ast.Await: "await is not allowed",
    ast.Global: "global statements are not allowed",
    ast.Nonlocal: "nonlocal statements are not allowed",
    ast.TryStar: "except* is not allowed",
}
# Builtins that exist only to reach around the guards. Names such as ``type`` or ``input``
# are not here: analysts use them as variable names, and the sandbox does not provide them.
_FORBIDDEN_NAMES = frozenset(
    {"exec", "eval", "compile", "getattr", "setattr", "delattr", "globals", "locals", "vars",
     "breakpoint"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CompiledScript:
    """Code ready to ``exec`` in the sandbox's globals, with its content hash."""

    code: CodeType
    sha256: str
    # How to read again the operands of its plain subscripts (index_errors.py).
    subscripts: Subscripts = ()


def code_sha256(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def compile_script(source: str) -> CompiledScript:
    """Compile ``source`` or raise ``ScriptSyntaxError`` / ``ScriptSecurityError``.

    Every failure of the parser or compiler (deep nesting, NUL bytes, lone
    surrogates, memory) becomes one of our two errors, never anything else.
    """
    if not isinstance(source, str):
        raise ScriptSyntaxError("code must be a string", 1, 1)
    return _compile_cached(source)


@lru_cache(maxsize=256)  # at most 256 x 64 KiB of source (plus code objects) per process
def _compile_cached(source: str) -> CompiledScript:
    # Compiler warnings (``x is 1``, bad escapes) are the script's business, not our logs',
    # and must not turn into errors where warnings are errors (as under pytest).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _compile_uncached(source)


class _ScriptTransformer(RestrictingNodeTransformer):
    """RestrictedPython's own policy, with reads of items and augmented assignment of names
    left as Python compiles them, plus augmented assignment of items (``counts[k] += 1``).

    ``xs[i]`` stays a plain subscript, not ``_getitem_(xs, i)``, and ``n += 1`` stays itself,
    not ``n = _inplacevar_("+=", n, 1)``: our guards for both let everything through (every
    type a script can reach may be indexed, and an augmented name is the script's own), and
    their calls cost a loop over a series a fifth of its time. (``_getitem_`` added a message,
    which index_errors.py now makes once a run has failed.) Writes and deletions of items
    keep their guard (``_write_``), and attribute access its own (``_getattr_``).

    Augmented assignment of items RestrictedPython refuses outright. Here it becomes one call,
    ``_inplaceitem_(op, _write_(counts), k, 1)``: the container passes the same write guard as
    ``counts[k] = ...`` and the item is read and combined in guards.py as ``_getitem_`` and
    ``_inplacevar_`` would. (The container and key are evaluated once, as Python does; the
    right-hand side is evaluated before the item is read, where Python reads the item first,
    which only a right-hand side that changes that very item could tell apart.)
    """

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            return self.node_contents_visit(node)
        return super().visit_Subscript(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if isinstance(node.target, ast.Name):
            return self.node_contents_visit(node)  # (the name is checked as any other)
        if not isinstance(node.target, ast.Subscript):
            return super().visit_AugAssign(node)
        target = node.target
        container = self.visit(target.value)
        key = self.visit(target.slice)
        value = self.visit(node.value)
        write = ast.Call(func=ast.Name("_write_", ast.Load()), args=[container], keywords=[])
        call = ast.Call(
            func=ast.Name("_inplaceitem_", ast.Load()),
            args=[ast.Constant(_AUG_OPERATORS[type(node.op)]), write, key, value],
            keywords=[],
        )
        statement = ast.Expr(value=call)
        for new in (write, write.func, call, call.func, call.args[0], statement):
            ast.copy_location(new, node)
        return statement


_AUG_OPERATORS = {
    ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.FloorDiv: "//=",
    ast.Mod: "%=", ast.Pow: "**=", ast.LShift: "<<=", ast.RShift: ">>=", ast.BitAnd: "&=",
    ast.BitOr: "|=", ast.BitXor: "^=", ast.MatMult: "@=",
}  # fmt: skip


def _compile_uncached(source: str) -> CompiledScript:
    tree = _parse(source)
    _check_policy(tree)
    check_compile_budget(tree)
    # Found now (RestrictedPython rewrites the tree in place), raised once the policy's own
    # refusals are known: those say more about a script than a missing name.
    missing = undefined_name(tree, source, SCRIPT_NAMES)
    subscripts = subscript_operands(tree)
    try:
        result = compile_restricted_exec(tree, filename=SCRIPT_FILENAME, policy=_ScriptTransformer)
    except (RecursionError, MemoryError) as exc:
        raise ScriptSyntaxError("code is nested too deeply or too large to compile", 1, 1) from exc
    except SyntaxError as exc:  # found by the compiler, not the parser: 'return' outside function
        message = _clean(exc.msg or "") or "code cannot be compiled"
        raise ScriptSyntaxError(message, exc.lineno or 1, exc.offset or 1) from exc
    except (ValueError, UnicodeError) as exc:
        raise ScriptSyntaxError(_clean(str(exc)) or "code cannot be compiled", 1, 1) from exc
    if result.errors or result.code is None:
        line, message = _split_rp_error(result.errors[0] if result.errors else "cannot compile")
        raise ScriptSecurityError(message, line)
    if missing is not None:
        raise missing
    return CompiledScript(code=result.code, sha256=code_sha256(source), subscripts=subscripts)


def _parse(source: str) -> ast.Module:
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = source.count("\n", 0, exc.start) + 1
        raise ScriptSyntaxError("code holds an invalid character (lone surrogate)", line) from exc
    if "\x00" in source:
        line = source.count("\n", 0, source.index("\x00")) + 1
        raise ScriptSyntaxError("code holds a NUL byte", line)
    try:
        tree = ast.parse(source, filename=SCRIPT_FILENAME, mode="exec")
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        raise ScriptSyntaxError(_clean(message), exc.lineno or 1, exc.offset or 1) from exc
    except (RecursionError, MemoryError) as exc:
        raise ScriptSyntaxError("code is nested too deeply or too large to parse", 1, 1) from exc
    except ValueError as exc:
        raise ScriptSyntaxError(_clean(str(exc)) or "invalid code", 1, 1) from exc
    if _depth(tree) > MAX_NESTING:
        raise ScriptSyntaxError(f"code is nested more than {MAX_NESTING} levels deep", 1, 1)
    return tree


def _depth(tree: ast.AST) -> int:
    """Nesting depth, computed without recursion so a hostile tree cannot blow our stack."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check_policy(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        message = _FORBIDDEN_NODES.get(type(node))
        if message is not None:
            raise ScriptSecurityError(message, getattr(node, "lineno", None))
        if isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            raise ScriptSecurityError(f'"{node.id}" is not allowed', node.lineno)
        # ``_`` alone is the everyday throwaway name; it is none of the guards' names.
        if (
            isinstance(node, ast.Name | ast.arg)
            and _name_of(node).startswith("_")
            and (_name_of(node) != "_")
        ):
            raise ScriptSecurityError(
                f'"{_name_of(node)}" is not allowed: names may not start with "_"', node.lineno
            )
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ScriptSecurityError(
                f'"{node.attr}" is not allowed: attribute names may not start with "_"',
                node.lineno,
            )


def _name_of(node: ast.Name | ast.arg) -> str:
    return node.id if isinstance(node, ast.Name) else node.arg


def _split_rp_error(text: str) -> tuple[int | None, str]:
    match = _RP_LINE.match(text)
    if not match:
        return None, _clean(text)
    return int(match.group(1)), _clean(match.group(2))


def _clean(message: str) -> str:
    """Keep compiler messages short and free of our file names."""
    return message.replace(SCRIPT_FILENAME, "script").strip()[:300]
