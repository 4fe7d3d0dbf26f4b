"""What a sandbox child gives a script: every library function working, the same answer in
every process, and nothing left over from the symbol before (issue 17, items 10 to 12).

All through ``run_batch``: real fork servers and real children.
"""

from __future__ import annotations

import ast
import json
import math
import statistics
import subprocess
import sys
from typing import Any

import pytest

from sandbox.executor import Limits, run_batch
from sandbox.fork_client import ForkServer, Idle
from sandbox.namespace import MATH, STATISTICS
from settings import PROJECT_ROOT
from tests.sandbox.sample import sample_items

LIMITS = Limits(cpu_seconds=2.0, memory_mb=256, stdout_bytes=4096)

# Arguments for each function of the ``math`` and ``statistics`` namespaces: every function
# a script can reach is called (a new one without a row here fails the test below).
XS = "[1.0, 2.0, 2.0, 3.0, 5.0, 8.0]"
YS = "[2.0, 1.0, 4.0, 3.0, 7.0, 9.0]"
MATH_CALLS = {
    "acos": "0.5", "acosh": "2.0", "asin": "0.5", "asinh": "2.0", "atan": "0.5",
    "atan2": "1.0, 2.0", "atanh": "0.5", "cbrt": "27.0", "ceil": "2.5", "comb": "10, 3",
    "copysign": "1.0, -0.0", "cos": "1.0", "cosh": "1.0", "degrees": "1.0",
    "dist": "[0.0, 0.0], [3.0, 4.0]", "erf": "0.5", "erfc": "0.5", "exp": "1.0",
    "exp2": "3.0", "expm1": "1e-05", "fabs": "-2.5", "factorial": "10", "floor": "2.5",
    "fmod": "7.0, 3.0", "frexp": "8.0", "fsum": XS, "gamma": "4.5", "gcd": "12, 18",
    "hypot": "3.0, 4.0", "isclose": "1.0, 1.0000000001", "isfinite": "1.0", "isinf": "1.0",
    "isnan": "1.0", "isqrt": "17", "lcm": "4, 6", "ldexp": "1.5, 3", "lgamma": "4.5",
    "log": "8.0, 2.0", "log10": "1000.0", "log1p": "1e-05", "log2": "8.0", "modf": "2.5",
    "nextafter": "1.0, 2.0", "perm": "10, 3", "pow": "2.0, 10.0", "prod": XS,
    "radians": "180.0", "remainder": "7.0, 3.0", "sin": "1.0", "sinh": "1.0", "sqrt": "2.0",
    "tan": "1.0", "tanh": "1.0", "trunc": "2.5", "ulp": "1.0",
}  # fmt: skip
STATISTICS_CALLS = {
    "correlation": f"{XS}, {YS}", "covariance": f"{XS}, {YS}", "fmean": XS,
    "geometric_mean": XS, "harmonic_mean": XS, "linear_regression": f"{XS}, {YS}",
    "mean": XS, "median": XS, "median_grouped": XS, "median_high": XS, "median_low": XS,
    "mode": XS, "multimode": XS, "pstdev": XS, "pvariance": XS, "quantiles": XS,
    "stdev": XS, "variance": XS,
}  # fmt: skip
NORMAL = statistics.NormalDist(1.0, 2.0)  # statistics.NormalDist(1.0, 2.0) in the script
NORMAL_DIST_CALLS = {
    "d.mean": NORMAL.mean, "d.median": NORMAL.median, "d.mode": NORMAL.mode,
    "d.stdev": NORMAL.stdev, "d.variance": NORMAL.variance, "d.cdf(1.5)": NORMAL.cdf(1.5),
    "d.inv_cdf(0.3)": NORMAL.inv_cdf(0.3), "d.pdf(1.0)": NORMAL.pdf(1.0),
    "d.overlap(statistics.NormalDist(2.0, 1.0))": NORMAL.overlap(statistics.NormalDist(2.0, 1.0)),
    "d.quantiles(4)": NORMAL.quantiles(4), "d.zscore(3.0)": NORMAL.zscore(3.0),
}  # fmt: skip


def run(source: str, count: int = 1, days: int = 60) -> list[tuple[str, dict[str, Any]]]:
    items = sample_items(count, days)
    return list(run_batch(source, items, params={}, limits=LIMITS))


def printing_each(calls: dict[str, str], module: str) -> str:
    """A script printing ``name value`` per call, or ``name ERROR type: message``."""
    lines = []
    for name, args in calls.items():
        lines += [
            "try:",
            f"    print({name!r}, {module}.{name}({args}))",
            "except Exception as e:",
            f"    print({name!r}, 'ERROR', e)",
        ]
    return "\n".join([*lines, "result = 1"])


def expected_lines(calls: dict[str, str], module: Any) -> list[str]:
    return [
        f"{name} {getattr(module, name)(*ast.literal_eval(f'({args},)'))}"
        for name, args in calls.items()
    ]


@pytest.mark.parametrize(
    ("namespace", "module", "calls", "prefix"),
    [(MATH, math, MATH_CALLS, "math"), (STATISTICS, statistics, STATISTICS_CALLS, "statistics")],
    ids=["math", "statistics"],
)
def test_every_function_of_math_and_statistics_works_in_a_child(
    namespace: Any, module: Any, calls: dict[str, str], prefix: str
) -> None:
    functions = {n for n, v in namespace._members.items() if callable(v) and n != "NormalDist"}
    assert functions == set(calls), "a function scripts can reach has no call in this test"
    ((_, out),) = run(printing_each(calls, prefix))
    assert out["error"] is None
    assert out["stdout"].splitlines() == expected_lines(calls, module)


def test_normal_dist_works_in_a_child() -> None:
    lines = ["d = statistics.NormalDist(1.0, 2.0)"]
    lines += [f"print({call})" for call in NORMAL_DIST_CALLS]
    ((_, out),) = run("\n".join([*lines, "result = 1"]))
    assert out["error"] is None
    assert out["stdout"].splitlines() == [str(value) for value in NORMAL_DIST_CALLS.values()]


HOST_PATH_LEAKS = """\
try:
    'abc'.encode('idna')
except Exception as e:
    print(e, [e], str(e))
print(sma, lambda: 1)
'abc'.encode('punycode')
"""


def test_no_host_path_reaches_stdout_or_messages() -> None:
    """A codec not loaded before the fork cannot be loaded in a child: it used to raise an
    OSError naming the library file it tried (the child could open no file); confined, the
    lookup finds no file (a LookupError). Neither may show a host path."""
    ((_, out),) = run(HOST_PATH_LEAKS)
    assert out["error"]["type"] in ("OSError", "LookupError")
    assert out["error"]["line"] == 6
    assert "idna" in out["stdout"] and "punycode" in out["error"]["message"]
    text = out["stdout"] + out["error"]["message"]
    for path in (str(PROJECT_ROOT), sys.prefix, sys.base_prefix, "/root", "/lib/", ".py", "0x"):
        assert path not in text
    assert "<function sma> <function <lambda>>" in out["stdout"]


@pytest.mark.parametrize("write", ["print", "raise"])
def test_host_paths_and_addresses_are_scrubbed_wherever_a_script_puts_them(write: str) -> None:
    """The scrub itself, on text naming our files as an import error would."""
    path = f"{sys.base_prefix}/lib/python3.11/encodings/idna.py"
    body = f"print('{path}', sma)" if write == "print" else f"raise ValueError('{path}')"
    ((_, out),) = run(f"{body}\nresult = 1")
    text = out["stdout"] if write == "print" else out["error"]["message"]
    assert text.startswith("<path>")
    assert path not in text and "/lib/" not in text and "0x" not in text


# --- the same script gives the same answer in every process (item 12) -------------------------

DETERMINISM = """\
names = {'AAPL', 'MSFT', 'GOOG', 'amzn', 'x' * 20, symbol, 'é', 'ß'}
order = ' '.join(n for n in names)
seen = {}
for n in names:
    seen[n] = len(seen)
print(order)
print(str(sma), str(ema), format(atr), f'{corr}', [mean, math, statistics])
print(str(lambda: 1), (x for x in ()))
by_rank = sum(seen[n] * (i + 1) for i, n in enumerate(sorted(names)))
result = {'order': float(len(order) * 7 + by_rank),
          'text': float(len(str(sma) + str(math) + str([ema, mean])))}
"""


def _run_in_fresh_interpreter() -> list[tuple[str, dict[str, Any]]]:
    """The script's outcomes from a new Python process with its own fork server (its own hash
    seed, were it random, and its own heap addresses)."""
    code = (
        "import json, sys\n"
        "from tests.sandbox.test_child_state import DETERMINISM, run\n"
        "print(json.dumps(run(DETERMINISM, count=3)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(pair) for pair in json.loads(done.stdout)]


def test_the_same_script_gives_the_same_outcome_in_every_process() -> None:
    runs = [_run_in_fresh_interpreter() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    for _, out in runs[0]:
        assert out["error"] is None
        assert "0x" not in out["stdout"]  # no heap address: it differs from process to process
        assert "<function sma>" in out["stdout"]


# --- nothing a symbol made runs or stays during the next one (item 10) --------------------------

# A suspended generator in a reference cycle: collecting it runs its ``finally``, which plants
# another such cycle holding the same 120 MB, and so on, for every collection after it.
REPLANTING = """\
if symbol == FIRST:
    def plant(big, spin):
        box = []
        def gen():
            try:
                yield box
            finally:
                if spin:
                    while True:
                        pass
                plant(big, SPIN)
        g = gen()
        next(g)
        box.append(g)
    plant([0.5] * 15_000_000, False)
    result = 1
else:
    room = [0.25] * 20_000_000
    result = close[-1] if len(room) == 20_000_000 else 0
"""


@pytest.mark.parametrize("spin", [False, True], ids=["memory", "spinning-finally"])
def test_garbage_that_replants_itself_never_reaches_the_next_symbol(spin: bool) -> None:
    """Measured before: every second symbol found the 120 MB still held (a MemoryError for the
    next one's own 160 MB), and a spinning ``finally`` made the next symbol's TimeoutError."""
    items = sample_items(4, 60)
    source = REPLANTING.replace("FIRST", repr(items[0].symbol)).replace("SPIN", str(spin))
    outcomes = list(run_batch(source, items, params={}, limits=LIMITS))
    assert [s for s, _ in outcomes] == [item.symbol for item in items]
    first = outcomes[0][1]
    if spin:  # its own garbage's finally spun: charged to the symbol that made it
        assert first["error"]["type"] == "TimeoutError"
    else:
        assert first == {"value": 1, "error": None, "stdout": ""}
    for (_, out), item in zip(outcomes[1:], items[1:], strict=True):
        assert out == {"value": item.close[-1], "error": None, "stdout": ""}


# A 120 MB cycle that outlives enough collections to reach the oldest generation before it
# becomes garbage: a collection of the young generations alone would leave it to the next
# symbol, whose own 160 MB would then not fit in the child's 256 MB.
AGED_GARBAGE = """\
if symbol == FIRST:
    hold = [[0.5] * 15_000_000]
    hold.append(hold)
    junk = [[] for _ in range(300_000)]  # hundreds of collections while hold is alive
    junk = None
    hold = None
    result = 1
else:
    room = [0.25] * 20_000_000
    result = close[-1] if len(room) == 20_000_000 else 0
"""


def test_garbage_that_aged_into_the_oldest_generation_never_reaches_the_next_symbol() -> None:
    items = sample_items(3, 60)
    source = AGED_GARBAGE.replace("FIRST", repr(items[0].symbol))
    outcomes = list(run_batch(source, items, params={}, limits=LIMITS))
    assert outcomes[0][1] == {"value": 1, "error": None, "stdout": ""}
    for (_, out), item in zip(outcomes[1:], items[1:], strict=True):
        assert out == {"value": item.close[-1], "error": None, "stdout": ""}


def test_ordinary_garbage_is_collected_in_the_same_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cycles that do not replant themselves cost no fresh child: one child runs the chunk."""
    taken: list[int] = []
    take = ForkServer.take

    def counting_take(self: ForkServer) -> Idle:
        idle = take(self)
        taken.append(idle.pid)
        return idle

    monkeypatch.setattr(ForkServer, "take", counting_take)
    source = "a = []\na.append(a)\nd = {}\nd['me'] = d\nresult = close[-1]\n"
    items = sample_items(4, 60)
    outcomes = list(run_batch(source, items, params={}, limits=LIMITS))
    assert [out["value"] for _, out in outcomes] == [item.close[-1] for item in items]
    assert len(taken) == 1
