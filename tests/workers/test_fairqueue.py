"""The fair queue (workers/fairqueue.py): round-robin across owners, leases that survive a
worker's death, and a chunk that yields its rest to another user waiting."""

from __future__ import annotations

import pytest

from workers.fairqueue import FairQueue


@pytest.fixture
def queue(redis_client) -> FairQueue:
    return FairQueue(redis_client)


def entry(job: str, chunk: int = 0) -> dict:
    return {"job": job, "chunk": chunk, "symbols": ["AAPL"]}


def test_entries_are_taken_round_robin_across_owners(queue):
    queue.push("alice", [entry(f"a{i}") for i in range(5)])
    queue.push("bob", [entry("b0")])
    queue.push(None, [entry("n0"), entry("n1")])
    taken = [queue.take(f"t{i}")["job"] for i in range(8)]
    assert taken == ["a0", "b0", "n0", "a1", "n1", "a2", "a3", "a4"]
    assert queue.take("t8") is None  # a token with nothing to do


def test_a_redelivered_token_takes_the_same_entry_again(queue):
    queue.push("alice", [entry("a0"), entry("a1")])
    assert queue.take("t1")["job"] == "a0"
    assert queue.take("t1")["job"] == "a0"  # its worker died: the same entry, not a1
    queue.done("t1")
    assert queue.take("t1")["job"] == "a1"


def test_others_waiting_is_only_another_owners_work(queue):
    queue.push("alice", [entry("a0"), entry("a1")])
    assert not queue.others_waiting("alice")
    assert queue.others_waiting("bob")
    queue.push("bob", [entry("b0")])
    assert queue.others_waiting("alice")
    queue.take("t1")  # a0
    queue.take("t2")  # b0: bob has nothing left
    assert not queue.others_waiting("alice")
