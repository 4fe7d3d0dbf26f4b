"""Chunk planning: a few chunks per worker process, contiguous, nothing lost or repeated."""

from __future__ import annotations

import pytest

from workers.chunking import plan_chunks


@pytest.mark.parametrize("n", [1, 7, 10, 11, 200, 2000, 5000])
def test_chunks_cover_every_symbol_once_in_order(n):
    symbols = [f"S{i}" for i in range(n)]
    chunks = plan_chunks(symbols, processes=2, chunks_per_process=2, min_chunk_size=10)
    assert [s for chunk in chunks for s in chunk] == symbols
    sizes = [len(c) for c in chunks]
    assert max(sizes) - min(sizes) <= 1


def test_chunk_count_adapts_to_the_job_and_the_workers():
    symbols = [f"S{i}" for i in range(5000)]
    assert len(plan_chunks(symbols, processes=2, chunks_per_process=2, min_chunk_size=10)) == 4
    assert len(plan_chunks(symbols, processes=8, chunks_per_process=3, min_chunk_size=10)) == 24
    assert len(plan_chunks(symbols[:25], processes=8, chunks_per_process=3, min_chunk_size=10)) == 3
    assert plan_chunks([], processes=2, chunks_per_process=2, min_chunk_size=10) == []
