"""Splitting a job's symbols into chunks sized to the workers available."""

from __future__ import annotations

import math
from collections.abc import Sequence


def plan_chunks(
    symbols: Sequence[str],
    *,
    processes: int,
    chunks_per_process: int,
    min_chunk_size: int,
) -> list[list[str]]:
    """A few chunks per worker process, none smaller than ``min_chunk_size``.

    Fewer, larger chunks amortise a task round trip, a query and a fork each;
    a few per process keep every process busy when chunks finish unevenly.
    The chunks are contiguous and as equal as possible, in the job's order.
    """
    n = len(symbols)
    if n == 0:
        return []
    most = max(1, processes * chunks_per_process)
    return split_evenly(symbols, min(most, math.ceil(n / max(1, min_chunk_size))))


def split_evenly(symbols: Sequence[str], count: int) -> list[list[str]]:
    """``symbols`` in ``count`` contiguous chunks (fewer if there are fewer symbols), as
    equal as possible, in their order."""
    n = len(symbols)
    count = max(1, min(count, n))
    if n == 0:
        return []
    base, extra = divmod(n, count)
    chunks: list[list[str]] = []
    start = 0
    for index in range(count):
        size = base + (1 if index < extra else 0)
        chunks.append(list(symbols[start : start + size]))
        start += size
    return chunks
