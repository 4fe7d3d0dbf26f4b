"""An evaluation's panel as ``panel.csv`` streams it (API.md, Exports).

The finisher stores the panel as numbers, one packed row set per rebalance date (``pack``:
each symbol's value, then per horizon its quantile and its forward return); the CSV text is
made when someone downloads it, a few dates at a time, never the whole at once. Making the
text at the job's end cost a 125,000-run evaluation half a second of its finish, for an export
not every analyst downloads, and the text took twice the space in Redis that the numbers do.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

ROWS_PER_BLOCK = 2000
_VALUE = np.dtype("<f8")
_QUANTILE = np.dtype("<i2")


def pack(
    values: np.ndarray, quantiles: Sequence[np.ndarray], forward: Sequence[np.ndarray]
) -> bytes:
    """One date's row set: values, then each horizon's quantiles (0: none) and forward
    returns (NaN: none), each aligned with the job's symbols."""
    parts = [np.asarray(values, dtype=_VALUE).tobytes()]
    for q, f in zip(quantiles, forward, strict=True):
        parts.append(np.asarray(q, dtype=_QUANTILE).tobytes())
        parts.append(np.asarray(f, dtype=_VALUE).tobytes())
    return b"".join(parts)


def unpack(
    raw: bytes, symbols: int, horizons: int
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """``pack``'s arrays back, in its order."""
    offset = 0

    def take(dtype: np.dtype) -> np.ndarray:
        nonlocal offset
        part = np.frombuffer(raw, dtype=dtype, count=symbols, offset=offset)
        offset += dtype.itemsize * symbols
        return part

    values = take(_VALUE)
    quantiles, forward = [], []
    for _ in range(horizons):
        quantiles.append(take(_QUANTILE))
        forward.append(take(_VALUE))
    if offset != len(raw):
        raise ValueError("a packed panel row set of the wrong size")
    return values, quantiles, forward


def header(horizons: Sequence[int]) -> list[str]:
    return [
        "date",
        "symbol",
        "value",
        *(f"quantile_{h}" for h in horizons),
        *(f"forward_{h}" for h in horizons),
    ]


def csv_blocks(
    dates: Sequence[str], symbols: Sequence[str], horizons: Sequence[int], packed: Iterable[bytes]
) -> Iterator[str]:
    """The panel's rows (every symbol-date, by date then the job's symbol order) as CSV text
    in blocks of about ``ROWS_PER_BLOCK``, the header first; ``packed`` holds a row set per
    date, in the dates' order. Nothing is yielded for a panel without any (never finished)."""
    out = io.StringIO()
    names = [_quoted(s) for s in symbols]
    started = False
    pending = 0  # rows written since the last block
    for day, raw in zip(dates, packed, strict=False):
        if not started:
            csv.writer(out, lineterminator="\n").writerow(header(horizons))
            started = True
        values, quantiles, forward = unpack(raw, len(symbols), len(horizons))
        columns = [_floats(values), *map(_ints, quantiles), *map(_floats, forward)]
        for name, *cells in zip(names, *columns, strict=True):
            out.write(f"{day},{name},{','.join(cells)}\n")
        pending += len(names)
        if pending >= ROWS_PER_BLOCK:
            yield drain(out)
            pending = 0
    if out.tell():
        yield out.getvalue()


def drain(out: io.StringIO) -> str:
    """What ``out`` holds, emptying it for the next block."""
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def _quoted(text: str) -> str:
    """``text`` as one CSV field (quoted when it holds a comma, quote or line break)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([text])
    return out.getvalue()


def _floats(row: np.ndarray) -> list[str]:
    finite = math.isfinite
    return [repr(x) if finite(x) else "" for x in row.tolist()]


def _ints(row: np.ndarray) -> list[str]:
    return [str(x) if x else "" for x in row.tolist()]
