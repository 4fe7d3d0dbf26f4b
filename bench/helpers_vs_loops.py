"""Each helper against the plain loop an analyst would write for the same result, in the sandbox.

    python -m bench.helpers_vs_loops [--symbols 200] [--runs 5]

Both sides compute the whole series (or the number) over a year of real closes per symbol,
run by the sandbox in this process on the same bars; the loop's result is checked against
the helper's. Prints the median time of each and the ratio helper / loop (under 1: the
helper is faster). Uses DATABASE_URL's bars (``python -m bench.prepare_data`` first).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from bench.common import universe
from sandbox.executor import Limits, run_batch_in_process
from sandbox.runner import SymbolInput

LOOPS = {
    "sma": (
        "out = []\ntotal = 0.0\nfor i in range(len(close)):\n    total += close[i]\n"
        "    if i >= 20:\n        total -= close[i - 20]\n"
        "    out.append(total / 20 if i >= 19 else None)\nresult = out[-1]",
        "result = sma(close, 20)[-1]",
    ),
    "ema": (
        "k = 2 / 21\nout = []\nprev = None\nfor i in range(len(close)):\n"
        "    if i == 19:\n        prev = sum(close[:20]) / 20\n"
        "    elif i > 19:\n        prev = close[i] * k + prev * (1 - k)\n"
        "    out.append(prev)\nresult = out[-1]",
        "result = ema(close, 20)[-1]",
    ),
    "rsi": (
        "gains = 0.0\nlosses = 0.0\nout = [None] * 14\n"
        "for i in range(1, 15):\n    d = close[i] - close[i - 1]\n"
        "    gains += d if d > 0 else 0.0\n    losses += -d if d < 0 else 0.0\n"
        "g = gains / 14\nl = losses / 14\n"
        "out.append(100.0 if l == 0 else 100 - 100 / (1 + g / l))\n"
        "for i in range(15, len(close)):\n    d = close[i] - close[i - 1]\n"
        "    g = (g * 13 + (d if d > 0 else 0.0)) / 14\n"
        "    l = (l * 13 + (-d if d < 0 else 0.0)) / 14\n"
        "    out.append(100.0 if l == 0 else 100 - 100 / (1 + g / l))\nresult = out[-1]",
        "result = rsi(close, 14)[-1]",
    ),
    "returns": (
        "out = [None]\nfor i in range(1, len(close)):\n"
        "    out.append(close[i] / close[i - 1] - 1)\nresult = out[-1]",
        "result = returns(close)[-1]",
    ),
    "highest": (
        "out = []\nfor i in range(len(close)):\n"
        "    out.append(max(close[i - 19:i + 1]) if i >= 19 else None)\nresult = out[-1]",
        "result = highest(close, 20)[-1]",
    ),
    "stdev": (
        "m = sum(close) / len(close)\n"
        "result = (sum((x - m) ** 2 for x in close) / (len(close) - 1)) ** 0.5",
        "result = stdev(close)",
    ),
    "zscore": (
        "m = sum(close) / len(close)\n"
        "s = (sum((x - m) ** 2 for x in close) / (len(close) - 1)) ** 0.5\n"
        "out = [(x - m) / s for x in close]\nresult = out[-1]",
        "result = zscore(close)[-1]",
    ),
    "max_drawdown": (
        "peak = close[0]\nworst = 0.0\nfor x in close:\n    peak = max(peak, x)\n"
        "    worst = min(worst, x / peak - 1)\nresult = worst",
        "result = max_drawdown(close)",
    ),
}


def run(code: str, items: list[SymbolInput]) -> tuple[float, list]:
    started = time.perf_counter()
    outcomes = list(run_batch_in_process(code, items, params={}, limits=Limits()))
    elapsed = time.perf_counter() - started
    errors = [o["error"] for _, o in outcomes if o["error"]]
    if errors:
        raise SystemExit(f"benchmark script failed: {errors[0]}")
    return elapsed, [o["value"] for _, o in outcomes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    symbols, data = universe(args.symbols)
    items = [
        SymbolInput(s, b.dates, b.open, b.high, b.low, b.close, b.volume, {})
        for s in symbols
        for b in [data.bars[s]]
    ]
    print(f"{'helper':>14} | {'loop':>8} {'helper':>8} | helper/loop   ({len(items)} symbols)")
    for name, (loop, helper) in LOOPS.items():
        _, expected = run(helper, items)
        _, got = run(loop, items)
        pairs = zip(got, expected, strict=True)
        if not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in pairs):
            raise SystemExit(f"the {name} loop does not compute what the helper does")
        loop_s = statistics.median(run(loop, items)[0] for _ in range(args.runs))
        helper_s = statistics.median(run(helper, items)[0] for _ in range(args.runs))
        ratio = helper_s / loop_s
        print(f"{name:>14} | {loop_s * 1000:6.1f}ms {helper_s * 1000:6.1f}ms | {ratio:.2f}x")


if __name__ == "__main__":
    main()
