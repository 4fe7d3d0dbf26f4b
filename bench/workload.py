"""The benchmark's scripts: a 30-line pure-Python signal, and the same with helpers."""

from __future__ import annotations

PURE_PYTHON = """
n = params.get("n", 20)
# simple moving average of the last n closes
total = 0.0
for i in range(len(close) - n, len(close)):
    total += close[i]
sma_n = total / n
# Wilder's RSI over 14 days
gains = 0.0
losses = 0.0
for i in range(1, 15):
    change = close[i] - close[i - 1]
    if change > 0:
        gains += change
    else:
        losses -= change
avg_gain = gains / 14
avg_loss = losses / 14
for i in range(15, len(close)):
    change = close[i] - close[i - 1]
    gain = change if change > 0 else 0.0
    loss = -change if change < 0 else 0.0
    avg_gain = (avg_gain * 13 + gain) / 14
    avg_loss = (avg_loss * 13 + loss) / 14
rsi_14 = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
# annualised volatility of daily returns
rets = [close[i] / close[i - 1] - 1 for i in range(1, len(close))]
m = sum(rets) / len(rets)
var = sum((r - m) ** 2 for r in rets) / (len(rets) - 1)
vol = (var ** 0.5) * (252 ** 0.5)
result = {"sma": sma_n, "rsi": rsi_14, "vol": vol, "gap": close[-1] / sma_n - 1}
"""

WITH_HELPERS = """
n = params.get("n", 20)
sma_n = sma(close, n)[-1]
rsi_14 = rsi(close, 14)[-1]
vol = stdev(returns(close)) * 252 ** 0.5
result = {"sma": sma_n, "rsi": rsi_14, "vol": vol, "gap": close[-1] / sma_n - 1}
"""

SCRIPTS = {"pure-python": PURE_PYTHON, "helpers": WITH_HELPERS}
