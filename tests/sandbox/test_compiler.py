"""compile_script: the two errors API.md promises, their lines and columns, and the cache."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sandbox.compiler
from sandbox.compile_budget import MAX_COMPILED_NODES, check_compile_budget
from sandbox.compiler import MAX_NESTING, CompiledScript, compile_script
from sandbox.errors import ScriptNameError, ScriptRejected, ScriptSecurityError, ScriptSyntaxError

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


# --- names checked at submit (API.md, "Checked at submit") ---------------------------------------


def test_a_typo_is_a_name_error_with_line_column_and_the_closest_names() -> None:
    error = rejected("window = 20\nx = sma(clsoe, window)\nresult = x[-1]\n")
    assert type(error) is ScriptNameError and error.error_type == "NameError"
    assert (error.line, error.column) == (2, 9)
    assert error.message == "name `clsoe` is not defined: did you mean `close`?"
    assert error.details() == {"line": 2, "column": 9, "name": "clsoe", "suggestions": ["close"]}


def test_the_closest_names_include_the_scripts_own() -> None:
    error = rejected("momentum = 1\nresult = momentun * 2\n")
    assert "`momentum`" in error.message and error.line == 2
    assert rejected("result = lenn(close)\n").suggestions[0] == "len"


def test_a_name_like_nothing_says_so() -> None:
    error = rejected("result = qqqqzz\n")
    assert error.message.startswith("name `qqqqzz` is not defined: it is not assigned anywhere")
    assert error.suggestions == []


def test_the_first_undefined_name_in_reading_order_is_named() -> None:
    error = rejected("x = 1\nif x:\n    y = zeta + alpha\n")
    assert (error.line, error.column) == (3, 9) and "`zeta`" in error.message


def test_the_column_counts_characters_not_bytes() -> None:
    error = rejected("s = 'été'; result = clsoe\n")
    assert (error.line, error.column) == (1, 21)


def test_a_policy_refusal_wins_over_a_missing_name() -> None:
    assert type(rejected("x = nope\nimport os\n")) is ScriptSecurityError


DEFINED_SOMEHOW = [
    ("branches", "if close[-1] > 1:\n    x = 1\nelse:\n    y = 2\nresult = x if x else y"),
    ("only-one-branch", "if symbol == 'A':\n    x = 1\nresult = x"),
    ("loop-target", "for i in range(3):\n    pass\nresult = i"),
    ("tuple-loop-target", "for i, (a, b) in enumerate(zip(close, open)):\n    pass\nresult = a"),
    ("while-body", "n = 0\nwhile n < 3:\n    n += 1\n    last = n\nresult = last"),
    (
        "parameters",
        "def f(a, b=1, *args, c, d=2, **kw):\n"
        "    return a + b + c + d + len(args) + len(kw)\nresult = f(1, c=1)",
    ),
    ("positional-only", "def f(a, /, b):\n    return a + b\nresult = f(1, 2)"),
    ("lambda-parameters", "f = lambda x, *ys: x + len(ys)\nresult = f(1)"),
    ("comprehension", "result = sum(x * y for x in close[-3:] for y in (1, 2) if x)"),
    ("dict-comprehension", "d = {k: v for k, v in params.items()}\nresult = len(d)"),
    ("assigned-after-the-function", "def f():\n    return later * 2\nlater = 21\nresult = f()"),
    ("recursion", "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\nresult = fact(5)"),
    (
        "except-as",
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    msg = str(e)\nresult = len(msg)",
    ),
    ("walrus", "if (n := len(close)) > 10:\n    pass\nresult = n"),
    ("walrus-in-comprehension", "xs = [y for x in close if (y := x * 2) > 0]\nresult = y"),
    ("del", "x = 1\ndel x\nx = 2\nresult = x"),
    ("with-as", "with params as p:\n    pass\nresult = 1"),
    ("augmented", "total = 0\nfor c in close:\n    total += c\nresult = total"),
    ("starred", "first, *rest = close\nresult = first + len(rest)"),
    (
        "nested-function",
        "def outer():\n    def inner():\n        return 2\n    return inner()\nresult = outer()",
    ),
    ("decorator", "def deco(f):\n    return f\n@deco\ndef g():\n    return 1\nresult = g()"),
    (
        "contract-names",
        "result = len(dates) + len(volume) + len(info) + len(symbol) + len(params)"
        " + math.pi + statistics.fmean([1.0]) + (1 if printed == '' else 0)",
    ),
    ("reference-series", "result = len(ref)"),
    (
        "helpers-and-exceptions",
        "try:\n    result = mean(returns(close))\nexcept ValueError:\n    result = None",
    ),
    ("underscore-throwaway", "for _ in range(3):\n    pass\nresult = 1"),
    ("underscore-unpack", "_, b = 1, 2\nresult = b"),
]


@pytest.mark.parametrize("source", [pytest.param(s, id=i) for i, s in DEFINED_SOMEHOW])
def test_names_defined_anywhere_are_no_false_alarm(source: str) -> None:
    compile_script(source)


# --- everyday Python at compile time --------------------------------------------------------------


def test_underscore_alone_is_a_name_and_underscore_prefixes_are_not() -> None:
    compile_script("for _ in range(3):\n    pass\n_ = 1\nf = lambda _: _\nresult = _")
    for source in ("__ = 1", "_x = 1", "def f(_y):\n    pass", "result = close._", "_print_ = 1"):
        assert type(rejected(source)) is ScriptSecurityError, source


def test_item_augmented_assignment_compiles_to_the_guarded_call() -> None:
    code = compile_script("counts = {}\ncounts['a'] = 0\ncounts['a'] += 1\nresult = 1").code
    assert "_inplaceitem_" in code.co_names and "_write_" in code.co_names
    assert type(rejected("counts = {}\ncounts.a += 1")) is ScriptSecurityError


# --- compile bombs: bounded before CPython compiles (issue 17, item 7) ---------------------------


def _nested(depth: int, protected: str, indent: str = "    ", prefix: str = "def f():\n") -> str:
    """try/finally nested in finally bodies, ``protected`` in each try."""
    lines = [prefix.rstrip("\n")] if prefix else []
    level = 1 if prefix else 0
    for _ in range(depth):
        lines += [indent * level + "try:", indent * (level + 1) + protected,
                  indent * level + "finally:"]  # fmt: skip
        level += 1
    lines.append(indent * level + protected)
    return "\n".join(lines) + "\n"


BOMBS = [
    # 13 levels with a return in each (the issue's 1.6 KB: 8 s and 3 GB before)
    pytest.param(_nested(13, "return 1"), id="return-in-each-13"),
    # nested in finally bodies 19 deep (the issue's 957 bytes: 10.8 s and 1.5 GB)
    pytest.param(_nested(19, "x = 1", indent=" ", prefix=""), id="finally-bodies-19"),
    pytest.param(_nested(40, "pass", indent=" ", prefix=""), id="finally-bodies-40"),
    pytest.param(
        "for i in range(2):\n"
        + _nested(12, "continue", prefix="")
        .replace("\n", "\n    ")
        .replace("try:", "try:", 1)
        .rstrip()
        .join(["    ", "\n"]),
        id="continue-in-each-12",
    ),
    pytest.param(
        "def f():\n    with params:\n"
        + _nested(12, "return 2", prefix="")
        .replace("\n", "\n        ")
        .join(["        ", "\n"])
        .rstrip()
        + "\n",
        id="with-and-returns-12",
    ),
]


@pytest.mark.parametrize("source", BOMBS)
def test_compile_bombs_are_refused_at_once_naming_the_try(source: str) -> None:
    start = time.perf_counter()
    error = rejected(source)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"took {elapsed:.2f} s"
    assert type(error) is ScriptSyntaxError
    assert "finally" in error.message and error.line is not None
    assert source.splitlines()[error.line - 1].strip() == "try:"
    assert len(source) < 4000


def test_compile_bombs_grow_no_process_by_hundreds_of_megabytes() -> None:
    """In a fresh interpreter (its peak RSS is then the bombs' alone): every bomb refused
    within a second, and the peak grows by less than 50 MB over compiling an ordinary script."""
    probe = (
        "import resource, sys, time\n"
        "from sandbox.compiler import compile_script\n"
        "from sandbox.errors import ScriptSyntaxError\n"
        "compile_script('result = sma(close, 20)[-1]')\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "worst = 0.0\n"
        "for source in sys.argv[1:]:\n"
        "    t = time.perf_counter()\n"
        "    try:\n        compile_script(source)\n    except ScriptSyntaxError:\n        pass\n"
        "    else:\n        raise SystemExit('compiled a bomb')\n"
        "    worst = max(worst, time.perf_counter() - t)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base\n"
        "print(worst, grown)\n"
    )
    bombs = [p.values[0] for p in BOMBS]
    done = subprocess.run(
        [sys.executable, "-c", probe, *bombs], capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[2], check=True,
    )  # fmt: skip
    worst, grown_kb = done.stdout.split()
    assert float(worst) < 1.0
    assert int(grown_kb) < 50 * 1024


def test_just_under_the_budget_still_compiles_quickly() -> None:
    source = _nested(9, "return 1")  # 3 ** 9 copies of a tiny body: legitimate, if odd
    start = time.perf_counter()
    compile_script(source)
    assert time.perf_counter() - start < 2.0


def test_an_ordinary_large_script_is_far_under_the_budget() -> None:
    body = API_EXAMPLE + "def f(a):\n    try:\n        return a\n    finally:\n        b = 1\n"
    source = body * (60_000 // len(body))
    assert check_compile_budget(ast.parse(source)) < MAX_COMPILED_NODES / 3
    compile_script(source)
