"""Real bars from the shipped sample as sandbox inputs, shared by the sandbox tests."""

from __future__ import annotations

import csv
import functools
import gzip

from sandbox.runner import SymbolInput
from tests.conftest import SAMPLE_PRICES


@functools.cache
def sample_items(count: int, days: int) -> tuple[SymbolInput, ...]:
    """The first ``count`` symbols of the shipped sample with their last ``days`` bars."""
    rows: dict[str, list[list[str]]] = {}
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["symbol", "date", "open", "high", "low", "close", "volume"]
        for row in reader:
            if row[0] not in rows:
                if len(rows) == count:
                    break
                rows[row[0]] = []
            rows[row[0]].append(row)
    items = []
    for symbol, unsorted in rows.items():
        bars = sorted(unsorted, key=lambda r: r[1])[-days:]
        items.append(
            SymbolInput(
                symbol=symbol,
                dates=tuple(r[1] for r in bars),
                open=tuple(float(r[2]) for r in bars),
                high=tuple(float(r[3]) for r in bars),
                low=tuple(float(r[4]) for r in bars),
                close=tuple(float(r[5]) for r in bars),
                volume=tuple(int(float(r[6])) for r in bars),
                info={"name": f"{symbol} Inc.", "sector": "Tech", "industry": None},
            )
        )
    assert len(items) == count
    return tuple(items)
