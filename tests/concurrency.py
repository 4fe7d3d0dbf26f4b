"""Running one call from several threads at once, for the tests of races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def at_once(call: Callable[[], T], times: int) -> list[T]:
    """``call`` from ``times`` threads released together (a barrier), so they race; their
    answers in thread order. An exception in any thread is raised here, not lost."""
    barrier = threading.Barrier(times)

    def raced(_: int) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(raced, range(times)))
