"""An index past a series' end says how long the series is, in every form scripts write it,
though reads of items are plain subscripts (no guard call per read: sandbox/index_errors.py);
where the operands cannot be read again without running code, Python's own message stands."""

from __future__ import annotations

import pytest

from sandbox.compiler import compile_script
from sandbox.executor import Limits, run_batch, run_batch_in_process
from tests.sandbox.sample import sample_items

ITEMS = sample_items(1, 252)
PAST_END = "index {k} is past the end: this series holds 252 values (0 to 251)"
BEFORE_START = (
    "index {k} reaches back past the start: this series holds 252 values (one per bar: the "
    "window holds 252 bars); ask for more history with `lookback` (up to 2,520 trading days)"
)

CASES = [
    # a loop one step too far, as analysts write it
    ("total = 0\nfor i in range(len(close) + 1):\n    total += close[i]\nresult = total\n",
     PAST_END.format(k=252), 3),
    ("for i in range(300):\n    x = close[-i - 1]\nresult = 1\n", BEFORE_START.format(k=-253), 2),
    ("n = 300\nresult = close[-n]\n", BEFORE_START.format(k=-300), 2),
    ("i = 251\nresult = close[i + 1] - close[i]\n", PAST_END.format(k=252), 2),
    ("result = close[2 * 200]\n", PAST_END.format(k=400), 1),
    ("result = close[10**6]\n", PAST_END.format(k=1000000), 1),
    # inside the script's own function, reading its argument and a closure's name
    ("k = 252\ndef last(xs):\n    return xs[k]\nresult = last(close)\n", PAST_END.format(k=252), 3),
    # an item of a mapping, then the series in it
    ("s = {'c': close}\nresult = s['c'][-253]\n", BEFORE_START.format(k=-253), 2),
    ("xs = [1, 2]\nresult = xs[2]\n", "index 2 is past the end: this list holds 2 values (0 to 1)",
     2),
    ("counts = [0]\ncounts[3] += 1\nresult = 1\n",
     "index 3 is past the end: this list holds 1 values (0 to 0)", 2),
]  # fmt: skip

FALLBACKS = [
    # the container is a call's result: reading it again would run code
    ("def f():\n    return close\nresult = f()[300]\n", "tuple index out of range", 3),
    ("result = close[len(close)]\n", "tuple index out of range", 1),
    ("result = 'abc'[5]\n", "string index out of range", 1),
    # raised inside a helper, not by the script's subscript
    ("result = max([])\n", None, 1),
]


@pytest.mark.parametrize(("source", "message", "line"), CASES)
@pytest.mark.parametrize("run", [run_batch, run_batch_in_process], ids=["isolated", "in-process"])
def test_an_index_past_a_series_says_its_length(run, source: str, message: str, line: int) -> None:
    [(_, out)] = list(run(source, ITEMS, params={}, limits=Limits()))
    assert out["error"] == {"type": "IndexError", "message": message, "line": line}


@pytest.mark.parametrize(("source", "message", "line"), FALLBACKS)
def test_operands_that_would_run_code_keep_pythons_message(
    source: str, message: str | None, line: int
) -> None:
    [(_, out)] = list(run_batch(source, ITEMS, params={}, limits=Limits()))
    assert out["error"]["line"] == line
    if message is not None:
        assert out["error"] == {"type": "IndexError", "message": message, "line": line}
    else:
        assert out["error"]["type"] == "ValueError"


def test_a_script_that_catches_the_error_goes_on() -> None:
    source = "try:\n    x = close[999]\nexcept IndexError:\n    x = -1\nresult = x\n"
    [(_, out)] = list(run_batch(source, ITEMS, params={}, limits=Limits()))
    assert out == {"value": -1, "error": None, "stdout": ""}


def test_reads_of_items_compile_to_plain_subscripts() -> None:
    code = compile_script("result = close[-1] + close[0]\nn = 1\nn += 2\n").code
    assert "_getitem_" not in code.co_names and "_inplacevar_" not in code.co_names
    written = compile_script("xs = [1]\nxs[0] = 2\nresult = xs[0]\n").code
    assert "_write_" in written.co_names  # writes keep their guard
