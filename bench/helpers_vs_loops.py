"""Each helper against the plain loop an analyst would write for the same result, in the sandbox.

    python -m bench.helpers_vs_loops [--symbols 200] [--runs 5] [--only corr beta ...]

Both sides compute the whole series (or the number) over a year of real closes per symbol,
run by the sandbox in this process on the same bars; the loop's result is checked against
the helper's. Prints the median time of each and the ratio helper / loop (under 1: the
helper is faster). Uses DATABASE_URL's bars (``python -m bench.prepare_data`` first). The
loops for corr, beta and ts_rank are what an analyst writes first (each window summed anew).
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
    "pstdev": (
        "m = sum(close) / len(close)\n"
        "result = (sum((x - m) ** 2 for x in close) / len(close)) ** 0.5",
        "result = pstdev(close)",
    ),
    "log_returns": (
        "out = [None]\nfor i in range(1, len(close)):\n"
        "    out.append(math.log(close[i] / close[i - 1]))\nresult = out[-1]",
        "result = log_returns(close)[-1]",
    ),
    "shift": (
        "out = []\nfor i in range(len(close)):\n"
        "    out.append(close[i - 5] if i >= 5 else None)\nresult = out[-1]",
        "result = shift(close, 5)[-1]",
    ),
    "true_range": (
        "out = [None]\nfor i in range(1, len(close)):\n"
        "    h, l, p = high[i], low[i], close[i - 1]\n"
        "    out.append(max(h - l, abs(h - p), abs(l - p)))\nresult = out[-1]",
        "result = true_range(high, low, close)[-1]",
    ),
    "atr": (
        "tr = [None]\nfor i in range(1, len(close)):\n"
        "    h, l, p = high[i], low[i], close[i - 1]\n"
        "    tr.append(max(h - l, abs(h - p), abs(l - p)))\n"
        "out = [None] * 14\nprev = sum(tr[1:15]) / 14\nout.append(prev)\n"
        "for i in range(15, len(close)):\n    prev = (prev * 13 + tr[i]) / 14\n"
        "    out.append(prev)\nresult = out[-1]",
        "result = atr(high, low, close, 14)[-1]",
    ),
    "macd": (
        "def ema_of(xs, n):\n    k = 2 / (n + 1)\n    out = [None] * (n - 1)\n"
        "    prev = sum(xs[:n]) / n\n    out.append(prev)\n    for x in xs[n:]:\n"
        "        prev = x * k + prev * (1 - k)\n        out.append(prev)\n    return out\n"
        "f = ema_of(close, 12)\ns = ema_of(close, 26)\n"
        "line = [a - b for a, b in zip(f[25:], s[25:])]\nsig = ema_of(line, 9)\n"
        "hist = [None] * 33 + [a - b for a, b in zip(line[8:], sig[8:])]\nresult = hist[-1]",
        "line, sig, hist = macd(close, 12, 26, 9)\nresult = hist[-1]",
    ),
    "corr": (
        "x = returns(close)[1:]\ny = returns(open)[1:]\n"
        "out = [None] * 19\nfor i in range(19, len(x)):\n"
        "    a = x[i - 19:i + 1]\n    b = y[i - 19:i + 1]\n    ma = sum(a) / 20\n"
        "    mb = sum(b) / 20\n    cov = sum((p - ma) * (q - mb) for p, q in zip(a, b))\n"
        "    va = sum((p - ma) ** 2 for p in a)\n    vb = sum((q - mb) ** 2 for q in b)\n"
        "    out.append(cov / (va * vb) ** 0.5)\nresult = out[-1]",
        "x = returns(close)[1:]\ny = returns(open)[1:]\nresult = corr(x, y, 20)[-1]",
    ),
    "beta": (
        "x = returns(close)[1:]\ny = returns(open)[1:]\n"
        "out = [None] * 19\nfor i in range(19, len(x)):\n"
        "    a = x[i - 19:i + 1]\n    b = y[i - 19:i + 1]\n    ma = sum(a) / 20\n"
        "    mb = sum(b) / 20\n    cov = sum((p - ma) * (q - mb) for p, q in zip(a, b))\n"
        "    vb = sum((q - mb) ** 2 for q in b)\n    out.append(cov / vb)\nresult = out[-1]",
        "x = returns(close)[1:]\ny = returns(open)[1:]\nresult = beta(x, y, 20)[-1]",
    ),
    "ts_rank": (
        "out = [None] * 19\nfor i in range(19, len(close)):\n    w = close[i - 19:i + 1]\n"
        "    x = close[i]\n    less = sum(1 for v in w if v < x)\n"
        "    same = sum(1 for v in w if v == x)\n    out.append((less + (same + 1) / 2) / 20)\n"
        "result = out[-1]",
        "result = ts_rank(close, 20)[-1]",
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
    parser.add_argument("--only", nargs="*", help="helpers to measure (default: all)")
    args = parser.parse_args()
    symbols, data = universe(args.symbols)
    items = [
        SymbolInput(s, b.dates, b.open, b.high, b.low, b.close, b.volume, {})
        for s in symbols
        for b in [data.bars[s]]
    ]
    print(f"{'helper':>14} | {'loop':>8} {'helper':>8} | helper/loop   ({len(items)} symbols)")
    for name, (loop, helper) in LOOPS.items():
        if args.only and name not in args.only:
            continue
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
