"""Chunk planning: a few chunks per worker process, contiguous, nothing lost or repeated."""

from __future__ import annotations

import pytest

from settings import Settings
from workers.chunking import plan_chunks
from workers.evaluation import plan_evaluation_chunks
from workers.jobspec import JobSpec
from workers.runtime import Runtime


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


def _evaluation(symbols: int, dates: int) -> JobSpec:
    days = [f"2017-01-{d:02d}" for d in range(1, dates + 1)]
    return JobSpec.new(
        owner=None, code="result = 1", code_sha256="0" * 64, kind="evaluation",
        symbols=[f"S{i}" for i in range(symbols)], evaluation={"dates": days},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("symbols", "dates", "chunks"),
    [
        (500, 252, 26),  # daily over a year: about a second of runs a chunk, not 4 of 8 s
        (500, 101, 12),  # weekly over two years: 11 rounded up to both processes' share
        (40, 252, 4),  # small: still a few per process
        (2, 10, 1),  # tiny: one chunk (at least min_chunk_size runs)
        (5000, 252, 252),
    ],
)
def test_evaluation_chunks_hold_about_a_second_of_runs_and_fill_every_process(
    symbols, dates, chunks
):
    rt = Runtime(Settings.from_env({}).with_overrides(worker_processes=2))
    planned = plan_evaluation_chunks(_evaluation(symbols, dates), rt)
    assert len(planned) == chunks
    assert [s for chunk in planned for s in chunk] == [f"S{i}" for i in range(symbols)]
    assert max(map(len, planned)) - min(map(len, planned)) <= 1


@pytest.mark.parametrize(("processes", "chunks"), [(1, 11), (2, 12), (3, 12), (4, 12), (8, 16)])
def test_an_evaluation_last_round_of_chunks_keeps_every_process_busy(processes, chunks):
    rt = Runtime(Settings.from_env({}).with_overrides(worker_processes=processes))
    planned = plan_evaluation_chunks(_evaluation(500, 101), rt)
    assert len(planned) == chunks
    assert len(planned) % processes == 0
