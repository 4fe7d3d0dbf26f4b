"""API.md's script contract: the names a script sees (and only those), results, errors, output."""

from __future__ import annotations

import builtins
import json
import math
import statistics
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

import pytest

from sandbox.executor import Limits, run_batch
from sandbox.guards import GUARDS, FrozenNamespace, safe_pow
from sandbox.namespace import (
    ALL_HELPERS,
    DATA_NAMES,
    MATH,
    SAFE_EXCEPTION_NAMES,
    STATISTICS,
    base_globals,
)
from sandbox.outcome import InvalidResult, check_result
from sandbox.runner import SymbolInput
from tests.sandbox.sample import sample_items as shared_sample_items

# API.md, "The script contract", copied here on purpose: changing either must be deliberate.
API_BUILTINS = (
    "abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "int", "isinstance",
    "len", "list", "map", "max", "min", "range", "reversed", "round", "set", "sorted", "str",
    "sum", "tuple", "zip", "print",
    # "Everyday Python works": next, pow, divmod, format.
    "next", "pow", "divmod", "format",
)  # fmt: skip
API_CONSTANTS = ("None", "True", "False")
API_HELPERS = (
    "sma", "ema", "rsi", "pct_change", "returns", "highest", "lowest", "mean", "stdev", "zscore",
    "max_drawdown", "pstdev", "log_returns", "shift", "true_range", "atr", "macd", "corr", "beta",
    "ts_rank",
)  # fmt: skip
API_DATA = ("symbol", "dates", "open", "high", "low", "close", "volume", "info", "params", "ref")
API_MODULES = ("math", "statistics")

Outcomes = list[tuple[str, dict[str, Any]]]


def sample_items(count: int = 3, days: int = 252) -> tuple[SymbolInput, ...]:
    return shared_sample_items(count, days)


ITEMS = sample_items()


def run(source: str, count: int = 2, params: dict[str, Any] | None = None) -> Outcomes:
    given = {"window": 20} if params is None else params
    return list(run_batch(source, ITEMS[:count], params=given, limits=Limits()))


def only(source: str, **kwargs: Any) -> dict[str, Any]:
    """The first symbol's outcome."""
    return run(source, **kwargs)[0][1]


# --- the names ------------------------------------------------------------------------------------


def test_builtins_are_exactly_the_contract() -> None:
    table = base_globals()["__builtins__"]
    expected = {name for name in API_BUILTINS if name != "print"}  # print is captured, see below
    assert set(table) == expected | set(API_CONSTANTS) | set(SAFE_EXCEPTION_NAMES)
    for name in expected - {"pow"}:
        assert table[name] is getattr(builtins, name)
    assert table["pow"] is safe_pow  # the builtin, refusing results of over a million bits
    assert (table["None"], table["True"], table["False"]) == (None, True, False)


def test_exceptions_are_the_usual_ones_and_not_the_runners() -> None:
    for name in SAFE_EXCEPTION_NAMES:
        exc = getattr(builtins, name)
        assert issubclass(exc, Exception)
    for name in ("BaseException", "SystemExit", "KeyboardInterrupt", "GeneratorExit"):
        assert name not in SAFE_EXCEPTION_NAMES
    assert {"Exception", "ValueError", "ZeroDivisionError", "KeyError", "IndexError"} <= set(
        SAFE_EXCEPTION_NAMES
    )


def test_globals_hold_the_contract_and_the_guards_only() -> None:
    g = base_globals()
    public = {name for name in g if not name.startswith("_")}
    assert public == set(API_HELPERS) | set(API_MODULES)
    assert set(ALL_HELPERS) == set(API_HELPERS)
    private = {name for name in g if name.startswith("_")}
    assert private == set(GUARDS) | {"__builtins__", "__name__"}
    assert tuple(DATA_NAMES) == API_DATA


def test_every_contract_name_resolves_in_a_script() -> None:
    names = [n for n in API_BUILTINS if n != "print"]
    names += [*API_HELPERS, *API_DATA, *API_MODULES, *API_CONSTANTS, *SAFE_EXCEPTION_NAMES]
    source = f"seen = ({', '.join(names)},)\nresult = len(seen)\n"
    assert only(source) == {"value": len(names), "error": None, "stdout": ""}


@pytest.mark.parametrize(
    "name",
    ["repr", "chr", "ord", "hex", "iter", "slice", "complex", "frozenset", "bytes",
     "print_function", "sys", "os", "numpy", "pandas", "datetime"],
)  # fmt: skip
def test_names_outside_the_contract_are_undefined(name: str) -> None:
    """Refused at submit ("Checked at submit"): every symbol carries the compiler's error."""
    out = only(f"result = {name}")
    assert out["value"] is None
    assert out["error"]["type"] == "NameError" and out["error"]["line"] == 1
    assert out["error"]["message"].startswith(f"name `{name}` is not defined")


def unwrapped(name: str, member: object) -> object:
    """The function behind a Python-level member (namespace.shown_by_name wraps those)."""
    if isinstance(member, float | BuiltinFunctionType):
        return member
    assert repr(member) == f"<function {name}>"
    return vars(type(member))["__call__"].__func__


@pytest.mark.parametrize(("name", "namespace"), [("math", MATH), ("statistics", STATISTICS)])
def test_modules_are_function_only_namespaces(name: str, namespace: FrozenNamespace) -> None:
    assert base_globals()[name] is namespace
    assert type(namespace) is FrozenNamespace and not isinstance(namespace, ModuleType)
    module = {"math": math, "statistics": statistics}[name]
    members = dict(namespace._members)
    assert members, "no functions at all"
    if name == "statistics":  # the one class, its methods allowlisted in guards.py
        assert members.pop("NormalDist") is statistics.NormalDist
    for member, shown in members.items():
        assert not member.startswith("_")
        assert not isinstance(shown, ModuleType | type)
        value = unwrapped(member, shown)
        assert type(value) is float or isinstance(value, BuiltinFunctionType | FunctionType)
        if callable(value):
            assert value.__module__ == name  # the module's own, nothing it imported
        assert getattr(module, member) is value


def test_statistics_namespace_is_its_public_api() -> None:
    functions = {n for n in statistics.__all__ if not isinstance(getattr(statistics, n), type)}
    assert set(STATISTICS._members) == functions | {"NormalDist"}
    assert "namedtuple" not in STATISTICS._members  # a class factory, imported by statistics


def test_math_and_statistics_work_in_a_script() -> None:
    source = (
        "result = {'sqrt': math.sqrt(16.0), 'pi': math.pi, 'mean': statistics.mean([1, 2, 6]),\n"
        "          'stdev': statistics.stdev([1.0, 2.0, 3.0]), 'log': math.log(math.e)}\n"
    )
    assert only(source)["value"] == {
        "sqrt": 4.0,
        "pi": math.pi,
        "mean": 3,
        "stdev": 1.0,
        "log": 1.0,
    }


def test_namespace_has_no_module_attributes() -> None:
    out = only("result = math.sys")
    assert out["error"]["type"] == "AttributeError"
    assert out["error"]["message"] == "math has no function 'sys'"


# --- the data -------------------------------------------------------------------------------------

DATA_PROBE = """\
series = (dates, open, high, low, close, volume)
result = {
    "dates": len(dates),
    "dates_sorted": 1 if list(dates) == sorted(dates) else 0,
    "dates_iso": 1 if all(len(d) == 10 and d[4] == "-" and d[7] == "-" for d in dates) else 0,
    "aligned": 1 if len({len(s) for s in series}) == 1 else 0,
    "tuples": 1 if all(isinstance(s, tuple) for s in series) else 0,
    "floats": 1 if all(isinstance(x, float) for x in open + high + low + close) else 0,
    "ints": 1 if all(isinstance(v, int) and not isinstance(v, bool) for v in volume) else 0,
    "info_keys": 1 if sorted(info) == ["industry", "name", "sector"] else 0,
    "info_none": 1 if info["industry"] is None else 0,
    "symbol_len": len(symbol),
    "first_close": close[0],
    "last_close": close[-1],
    "last_volume": volume[-1],
    "window": params["window"],
}
"""


def test_data_names_hold_the_symbols_bars() -> None:
    for (symbol, out), item in zip(run(DATA_PROBE, count=3), ITEMS, strict=True):
        assert symbol == item.symbol
        assert out["error"] is None, out
        assert out["value"] == {
            "dates": len(item.dates), "dates_sorted": 1, "dates_iso": 1, "aligned": 1,
            "tuples": 1, "floats": 1, "ints": 1, "info_keys": 1, "info_none": 1,
            "symbol_len": len(item.symbol), "first_close": item.close[0],
            "last_close": item.close[-1], "last_volume": item.volume[-1], "window": 20,
        }  # fmt: skip


def test_symbol_is_the_symbol() -> None:
    source = f'result = 1 if symbol == "{ITEMS[0].symbol}" else 2'
    assert [out["value"] for _, out in run(source, count=3)] == [1, 2, 2]


def test_params_are_a_fresh_deep_copy_per_symbol() -> None:
    params = {"window": 20, "nested": {"a": [1, 2]}}
    source = (
        "seen = len(params['nested']['a']) + len(params)\n"
        "params['nested']['a'].append(3)\nparams['new'] = 1\ninfo['name'] = 'changed'\n"
        "result = seen\n"
    )
    assert [out["value"] for _, out in run(source, count=3, params=params)] == [4, 4, 4]
    assert params == {"window": 20, "nested": {"a": [1, 2]}}  # the caller's copy too


# --- print and printed ----------------------------------------------------------------------------


def test_print_is_captured_per_symbol() -> None:
    source = (
        f'if symbol == "{ITEMS[0].symbol}":\n    print("debug", 1, sep="-", end="!")\n'
        "    print()\nresult = 1\n"
    )
    outcomes = run(source, count=2)
    assert outcomes[0][1] == {"value": 1, "error": None, "stdout": "debug-1!\n"}
    assert outcomes[1][1] == {"value": 1, "error": None, "stdout": ""}


def test_printed_reads_what_was_printed() -> None:
    source = "print('ab')\ndef f():\n    print('c')\nf()\nresult = len(printed)\n"
    assert only(source) == {"value": 5, "error": None, "stdout": "ab\nc\n"}


def test_stdout_is_cut_at_4_kib() -> None:
    out = only("for i in range(2000):\n    print('0123456789')\nresult = 1")
    # 4 KiB as stored: JSON-escaped, where each newline takes two bytes
    assert out["value"] == 1 and len(json.dumps(out["stdout"])) - 2 in (4095, 4096)
    assert out["stdout"].startswith("0123456789\n0123456789\n")


# --- results --------------------------------------------------------------------------------------

VALID = [
    (0, 0),
    (-3, -3),
    (1.5, 1.5),
    (-0.0, 0.0),
    (2**53, 2**53),
    (2**53 + 2, float(2**53 + 2)),  # past 2**53 an int is only as exact as a float
    (None, None),
    ({}, {}),
    ({"a": 1, "b": -2.5, "c": None}, {"a": 1, "b": -2.5, "c": None}),
    ({f"k{i}": i for i in range(50)}, {f"k{i}": i for i in range(50)}),
    ({"x" * 100: 1}, {"x" * 100: 1}),
]
INVALID = [
    (True, "bool"),
    (False, "bool"),
    (math.nan, "finite"),
    (math.inf, "finite"),
    (-math.inf, "finite"),
    (10**400, "too large"),
    ("1", "str"),
    ([1.0], "list"),
    ((1.0,), "tuple"),
    ({f"k{i}": i for i in range(51)}, "more than 50"),
    ({1: 1}, "strings"),
    ({"": 1}, "1 to 100"),
    ({"x" * 101: 1}, "1 to 100"),
    ({"a": True}, "bool"),
    ({"a": {"b": 1}}, "dict"),
    ({"a": math.nan}, "finite"),
    ({"\ud800": 1}, "valid text"),
    (1j, "complex"),
]


@pytest.mark.parametrize(("value", "expected"), VALID)
def test_valid_results(value: Any, expected: Any) -> None:
    checked = check_result(value)
    assert checked == expected and type(checked) is type(expected)


@pytest.mark.parametrize(("value", "says"), INVALID)
def test_invalid_results(value: Any, says: str) -> None:
    with pytest.raises(InvalidResult, match=says):
        check_result(value)


def test_a_key_once_valid_stays_valid_and_no_other_key_passes_on_its_account() -> None:
    """Result keys found valid are remembered (each run's re-check looks them up); what makes
    a key invalid is still found on every run, for keys near a remembered one too."""
    for _ in range(3):
        assert check_result({"gap": 1.5, "k" * 100: 2}) == {"gap": 1.5, "k" * 100: 2}
    for bad, says in (("k" * 101, "characters"), ("", "characters"), ("g\ud800", "valid text")):
        with pytest.raises(InvalidResult, match=says):
            check_result({"gap": 1.0, bad: 1.0})

    class Key(str):
        pass

    with pytest.raises(InvalidResult, match="must be strings"):
        check_result({Key("gap"): 1.0})
    with pytest.raises(InvalidResult, match="finite"):
        check_result({"gap": float("nan")})  # the values are checked on every run


def test_results_through_the_sandbox() -> None:
    item = ITEMS[0]
    cases = {
        "result = 42": 42,
        "result = close[-1] / close[0]": item.close[-1] / item.close[0],
        "result = None": None,
        "result = {'last': close[-1], 'none': None}": {"last": item.close[-1], "none": None},
        "result = volume[-1] * 10**9": float(item.volume[-1] * 10**9),
    }
    for source, expected in cases.items():
        assert only(source) == {"value": expected, "error": None, "stdout": ""}, source


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("result = True", "result must be a number, not a bool: write a flag as `1 if ... else 0`"),
        ("result = 1e308 * 10", "result must be finite, not inf"),
        ("result = {str(i): i for i in range(51)}", "result dict has more than 50 keys"),
        ("x = 1", "the script did not assign result"),
    ],
)
def test_invalid_results_through_the_sandbox(source: str, message: str) -> None:
    assert only(source) == {
        "value": None,
        "error": {"type": "InvalidResult", "message": message},
        "stdout": "",
    }


# --- per-symbol errors and their lines ----------------------------------------------------------

ERRORS = [
    ("x = 1\ny = 2\nresult = x / 0\n", "ZeroDivisionError", "division by zero", 3),
    (
        "x = 1\ndef f(v):\n    return 1 / v\ny = 2\nresult = f(0)\n",
        "ZeroDivisionError",
        "division by zero",
        3,  # where it happened, inside the script's own function
    ),
    ("x = 1\nresult = sma(close, 'x')\n", "TypeError", "sma: n must be an int, not str", 2),
    (
        "x = 1\ny = 2\nresult = close[10**6]\n",
        "IndexError",
        "index 1000000 is past the end: this series holds 252 values (0 to 251)",
        3,
    ),
    (
        "x = 1\ny = 2\nresult = close[-253]\n",
        "IndexError",
        "index -253 reaches back past the start: this series holds 252 values (one per bar: the "
        "window holds 252 bars); ask for more history with `lookback` (up to 2,520 trading days)",
        3,
    ),
    (
        "x = [1, 2]\nresult = x[-3]\n",
        "IndexError",
        "index -3 reaches back past the start: this list holds 2 values",
        2,
    ),
    (
        "x = (1, 2)\nresult = x['a']\n",
        "TypeError",
        "tuple indices must be integers or slices, not str",
        2,
    ),
    ("x = 1\nresult = params['nope']\n", "KeyError", "'nope'", 2),
    (
        # assigned after it is read: the submit check lets it through, the run fails
        "\n\n\nresult = undefined_name\nundefined_name = 1\n",
        "NameError",
        "name 'undefined_name' is not defined",
        4,
    ),
    (
        "x = 1\ng = (1 / v for v in (1, 0))\nresult = sum(g)\n",
        "ZeroDivisionError",
        "division by zero",
        2,
    ),
    (
        "x = 1\nresult = statistics.mean([])\n",
        "StatisticsError",
        "mean requires at least one data point",
        2,
    ),
    ("x = 1\nraise ValueError('my own message')\n", "ValueError", "my own message", 2),
    ("x = 1\nresult = close.nope\n", "AttributeError", "'tuple' object has no attribute 'nope'", 2),
    (
        "x = 1\nresult = close.mean()\n",
        "AttributeError",
        "'tuple' object has no attribute 'mean': use mean(xs) instead, e.g. mean(close)",
        2,
    ),
    (
        "x = 1\nresult = returns(close).std()\n",
        "AttributeError",
        "'tuple' object has no attribute 'std': use stdev(xs) (sample) or pstdev(xs) instead, "
        "e.g. stdev(close) (sample) or pstdev(close)",
        2,
    ),
    (
        "x = 1\nresult = sma.nope\n",
        "SecurityError",
        "'function' object has no attribute 'nope' usable in a script",
        2,
    ),
    (
        "x = 1\ny = 2\nclose[0] = 1\n",
        "SecurityError",
        "'tuple' object cannot be modified in a script",
        3,
    ),
]


@pytest.mark.parametrize(("source", "kind", "message", "line"), ERRORS)
def test_runtime_errors_carry_the_scripts_line(
    source: str, kind: str, message: str, line: int
) -> None:
    for _, out in run(source, count=2):
        assert out == {
            "value": None,
            "error": {"type": kind, "message": message, "line": line},
            "stdout": "",
        }


@pytest.mark.parametrize(
    ("source", "kind", "line"),
    [("x = 1\nimport os\n", "SecurityError", 2), ("x = 1\nresult = (\n", "SyntaxError", 2)],
)
def test_compile_errors_reach_every_symbol(source: str, kind: str, line: int) -> None:
    for _, out in run(source, count=3):
        assert out["value"] is None and out["stdout"] == ""
        assert out["error"]["type"] == kind and out["error"]["line"] == line


def test_guard_refusals_can_be_caught_as_plain_python_would() -> None:
    source = (
        "try:\n    x = close.nope\nexcept AttributeError:\n    x = 1\n"
        "try:\n    close[0] = 1\nexcept TypeError:\n    x = x + 1\nresult = x\n"
    )
    assert only(source) == {"value": 2, "error": None, "stdout": ""}


# --- the API's example, and determinism -----------------------------------------------------------

API_EXAMPLE = """\
# 20-day momentum scaled by 60-day volatility
window = params.get("window", 20)
r = returns(close)[-60:]
vol = stdev([x for x in r if x is not None])
result = (close[-1] / close[-1 - window] - 1) / vol if vol else None
"""


def test_api_example_gives_a_finite_number_per_symbol() -> None:
    for (_, out), item in zip(run(API_EXAMPLE, count=3), ITEMS, strict=True):
        assert out["error"] is None
        r = [b / a - 1 for a, b in zip(item.close[-61:-1], item.close[-60:], strict=True)]
        mu = sum(r) / len(r)
        vol = math.sqrt(sum((x - mu) ** 2 for x in r) / (len(r) - 1))
        expected = (item.close[-1] / item.close[-21] - 1) / vol
        assert out["value"] == pytest.approx(expected, rel=1e-12)


def test_same_script_and_data_give_the_same_outcomes() -> None:
    source = API_EXAMPLE + "print(sorted({str(x) for x in close[-5:]}))\n"
    assert run(source, count=3) == run(source, count=3)


# --- warnings: a helper asked for more history than it was given (per run) ----------------------


def test_a_helper_short_of_history_is_a_warning_of_the_run() -> None:
    source = "x = sma(close, 300)\ny = sma(close, 300)\nz = ema(close, 20)\nresult = 1"
    for _, out in run(source, count=2):
        assert out == {
            "value": 1,
            "error": None,
            "stdout": "",
            "warnings": [
                "sma(xs, 300) needs at least 300 values of history and was given fewer, so it "
                "gives only None: a longer `lookback` gives more bars"
            ],
        }


def test_warnings_are_kept_when_the_run_fails_and_not_carried_to_the_next() -> None:
    source = (
        f"if symbol == '{ITEMS[0].symbol}':\n    x = atr(high, low, close, 400)\n"
        "    result = 1 / 0\nelse:\n    result = 2"
    )
    first, second = (out for _, out in run(source, count=2))
    assert first["error"]["type"] == "ZeroDivisionError"
    assert first["warnings"] == [
        "atr(high, low, close, 400) needs at least 401 values of history and was given fewer, "
        "so it gives only None: a longer `lookback` gives more bars"
    ]
    assert second == {"value": 2, "error": None, "stdout": ""}


def test_print_as_a_decorator_works_and_never_names_the_internal_print() -> None:
    """``@print`` was a NameError naming ``_print`` (issue 17, item 13): RestrictedPython
    defines it only inside the decorated function, and the decorator is read outside."""
    source = "@print\ndef f():\n    return 1\nresult = 1 if f is None else 0\n"  # print gives None
    for _, out in run(source, count=2):
        assert out["error"] is None and out["value"] == 1
        assert "_print" not in str(out)
        assert out["stdout"].startswith("<function ")
    nested = "def g():\n    @print\n    def h():\n        pass\n    return 2\nresult = g()\n"
    assert only(nested)["value"] == 2
