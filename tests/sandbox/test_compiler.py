"""compile_script: the two errors API.md promises, their lines and columns, and the cache."""

from __future__ import annotations

import ast
import hashlib
from typing import Any

import pytest

import sandbox.compiler
from sandbox.compiler import MAX_NESTING, CompiledScript, compile_script
from sandbox.errors import ScriptRejected, ScriptSecurityError, ScriptSyntaxError

API_EXAMPLE = """\
# 20-day momentum scaled by 60-day volatility
window = params.get("window", 20)
r = returns(close)[-60:]
vol = stdev([x for x in r if x is not None])
result = (close[-1] / close[-1 - window] - 1) / vol if vol else None
"""


def rejected(source: str) -> ScriptRejected:
    with pytest.raises(ScriptRejected) as caught:
        compile_script(source)
    return caught.value


# --- syntax errors: 1-based line and column -------------------------------------------------------

SYNTAX = [
    # (id, source, line, column, a piece of the message)
    ("dangling-operator", "result = 1 +\n", 1, 13, "invalid syntax"),
    ("unclosed-paren", "x = 1\ny = (2,\nresult = x\n", 2, 5, "'(' was never closed"),
    ("missing-colon", "x = 1\n\nif x\n    result = 1\n", 3, 5, "expected ':'"),
    ("unexpected-indent", "x = 1\n  result = 2\n", 2, 2, "unexpected indent"),
    ("bad-character", "x = 1\ny = 2\nresult = x $ y\n", 3, 12, "invalid syntax"),
    ("bad-parameter", "def f(:\n    pass\n", 1, 7, "invalid syntax"),
    ("unterminated-string", "x = 1\nresult = 'abc\n", 2, 10, "unterminated string"),
    ("missing-block", "for x in close:\nresult = 1\n", 2, 1, "expected an indented block"),
    ("leading-zero", "x = 1\nresult = 0777\n", 2, 10, "leading zeros"),
    ("fstring", "x = 1\nresult = f'{x'\n", 2, 15, "f-string"),
    # found by the compiler after parsing: the line is still the user's
    ("return-outside-function", "x = 1\nreturn x\n", 2, 1, "'return' outside function"),
    ("break-outside-loop", "x = 1\ny = 2\nbreak\n", 3, 1, "'break' outside loop"),
    ("yield-outside-function", "x = 1\nyield 2\n", 2, 1, "'yield' outside function"),
    ("duplicate-argument", "x = 1\ndef f(a, a):\n    pass\n", 2, 10, "duplicate argument"),
    ("repeated-keyword", "def f(x):\n    pass\nf(x=1, x=2)\n", 3, 8, "keyword argument repeated"),
]


@pytest.mark.parametrize(
    ("source", "line", "column", "says"),
    [pytest.param(*row[1:], id=row[0]) for row in SYNTAX],
)
def test_syntax_error_line_and_column(source: str, line: int, column: int, says: str) -> None:
    error = rejected(source)
    assert type(error) is ScriptSyntaxError
    assert error.error_type == "SyntaxError"
    assert (error.line, error.column) == (line, column)
    assert says in error.message
    assert error.details() == {"line": line, "column": column}
    assert "<script>" not in error.message and "script, line" not in error.message


# --- security errors: the line of the offence -----------------------------------------------------

SECURITY = [
    ("import-line-1", "import os\n", 1, "import"),
    ("import-line-4", "x = 1\n\n\nimport os\n", 4, "import"),
    ("from-import-line-2", "x = 1\nfrom math import sqrt\n", 2, "import"),
    ("import-in-function-line-3", "def f():\n    x = 1\n    import os\n", 3, "import"),
    ("import-in-branch-line-5", "x = 1\nif x:\n    y = 2\nelse:\n    import os\n", 5, "import"),
    ("class-line-3", "x = 1\ny = 2\nclass A:\n    pass\n", 3, "class"),
    ("dunder-attribute-line-2", "x = 1\ny = close.__class__\n", 2, "__class__"),
    ("underscore-name-line-3", "x = 1\ny = 2\nz = _secret\n", 3, "_secret"),
    ("exec-line-2", "x = 1\nexec('1')\n", 2, "exec"),
    ("global-line-4", "x = 1\ny = 2\ndef f():\n    global x\n", 4, "global"),
    ("nonlocal-line-4", "def f():\n    y = 1\n    def g():\n        nonlocal y\n", 4, "nonlocal"),
    ("try-star-line-2", "x = 1\ntry:\n    pass\nexcept* ValueError:\n    pass\n", 2, "except*"),
    ("async-line-2", "x = 1\nasync def f():\n    pass\n", 2, "async"),
    ("frame-attribute-line-2", "x = 1\ny = g.gi_frame\n", 2, "gi_frame"),
    ("match-line-2", "x = 1\nmatch x:\n    case 1:\n        pass\n", 2, "Match"),
    ("underscore-parameter-line-2", "x = 1\ndef f(_getattr_):\n    pass\n", 2, "_getattr_"),
]


@pytest.mark.parametrize(
    ("source", "line", "says"), [pytest.param(*row[1:], id=row[0]) for row in SECURITY]
)
def test_security_error_line(source: str, line: int, says: str) -> None:
    error = rejected(source)
    assert type(error) is ScriptSecurityError
    assert error.error_type == "SecurityError"
    assert error.line == line
    assert says in error.message
    assert error.details() == {"line": line}


# --- the cache -----------------------------------------------------------------------------------


def test_same_code_gives_the_same_compiled_object() -> None:
    first = compile_script(API_EXAMPLE)
    again = compile_script("".join(API_EXAMPLE.splitlines(keepends=True)))  # equal, not identical
    assert again is first
    assert isinstance(first, CompiledScript)
    assert first.sha256 == hashlib.sha256(API_EXAMPLE.encode()).hexdigest()


def test_different_code_gives_a_different_object() -> None:
    first = compile_script("result = 1\n")
    assert compile_script("result = 1 \n") is not first
    assert compile_script("result = 2\n").sha256 != first.sha256


def test_refused_code_is_refused_every_time() -> None:
    source = "x = 1\nimport os  # cache probe\n"
    errors = [rejected(source) for _ in range(3)]
    assert all(type(e) is ScriptSecurityError and e.line == 2 for e in errors)


# --- everything the parser or compiler can throw becomes one of our two errors --------------------

PARSER_BLOWUPS = [
    # (id, source, what the bare parser raises for it)
    ("recursion", "a" + ".b" * 30000, RecursionError),
    ("memory", "-" * 100000 + "1", MemoryError),
    ("lone-surrogate", "x = 1\nresult = '\ud800'\n", UnicodeEncodeError),
    ("nul-byte", "x = 1\n\nresult = 1\x00\n", (ValueError, SyntaxError)),
    ("too-many-parens", "(" * 10000 + ")" * 10000, SyntaxError),
    ("huge-int-literal", "x = " + "9" * 5000, SyntaxError),
]


@pytest.mark.parametrize(
    ("source", "raw"), [pytest.param(*row[1:], id=row[0]) for row in PARSER_BLOWUPS]
)
def test_parser_failures_become_syntax_errors(source: str, raw: Any) -> None:
    with pytest.raises(raw):
        ast.parse(source)
    error = rejected(source)
    assert type(error) is ScriptSyntaxError
    assert error.line is not None and error.line >= 1


def test_nul_byte_and_surrogate_report_their_line() -> None:
    assert rejected("x = 1\n\nresult = 1\x00\n").line == 3
    assert rejected("x = 1\nresult = '\ud800'\n").line == 2


def test_nesting_over_the_limit_is_a_syntax_error() -> None:
    deep = "x = " + "[" * (MAX_NESTING + 5) + "]" * (MAX_NESTING + 5)
    error = rejected(deep)
    assert type(error) is ScriptSyntaxError and f"{MAX_NESTING}" in error.message
    compile_script("x = " + "[" * 20 + "]" * 20)  # reasonable nesting is fine


@pytest.mark.parametrize(
    "exc",
    [
        RecursionError(),
        MemoryError(),
        ValueError("bad"),
        UnicodeDecodeError("utf-8", b"", 0, 1, "x"),
    ],
)
def test_any_failure_of_ast_parse_becomes_syntax_error(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    def parse(*args: Any, **kwargs: Any) -> ast.Module:
        raise exc

    monkeypatch.setattr(sandbox.compiler.ast, "parse", parse)
    error = rejected(f"result = 1  # {type(exc).__name__} from the parser\n")
    assert type(error) is ScriptSyntaxError
    assert error.line == 1


@pytest.mark.parametrize(
    "exc",
    [
        RecursionError(),
        MemoryError(),
        ValueError("bad"),
        UnicodeEncodeError("utf-8", "", 0, 1, "x"),
    ],
)
def test_any_failure_of_the_compile_step_becomes_syntax_error(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(sandbox.compiler, "compile_restricted_exec", fail)
    error = rejected(f"result = 2  # {type(exc).__name__} from the compiler\n")
    assert type(error) is ScriptSyntaxError
    assert error.line == 1
    assert "/" not in error.message  # nothing of our paths


def test_non_text_code_is_a_syntax_error() -> None:
    bad: list[Any] = [b"result = 1", None, 3, ["result = 1"]]
    for source in bad:
        error = rejected(source)
        assert type(error) is ScriptSyntaxError and error.line == 1


# --- what compiles -------------------------------------------------------------------------------

FINE = [
    API_EXAMPLE,
    "result = None",
    "def f(x, n=2, *args, **kwargs):\n    return x\nresult = f(1)",
    "g = (x for x in close)\nresult = sum(g)",
    "try:\n    x = 1 / 0\nexcept ZeroDivisionError as e:\n    x = len(e.args)\nresult = x",
    "print('x')\nresult = len(printed)",
    "result = {k: v for k, v in zip('ab', (1, 2))}",
    "x = 1\nx += 2\nresult = f'{x:>{5}}'",
    "a, (b, c) = 1, (2, 3)\nresult = a + b + c",
    "result = [y for x in ((1, 2),) for y in x if (z := y)]",
    "result = lambda x=1: x",
]


@pytest.mark.parametrize("source", FINE)
def test_ordinary_scripts_compile(source: str) -> None:
    compiled = compile_script(source)
    assert compiled.code.co_filename == "<script>"
