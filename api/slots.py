"""At most a few requests of one API process run Python at a time; the rest wait their turn.

gunicorn keeps many threads per process so that long polls (``wait`` on ``POST /execute``)
cannot use them all up. But when a burst arrives, every one of those threads is runnable at
once, and they hand the GIL back and forth on every Redis or database round trip: measured
here, a submit then cost 9-12 ms of CPU in a 200-client burst, against 5.5-6.5 ms with four
threads a process. A slot is taken as a request starts and handed back when it ends, or while
it only waits (``released``); the waiting threads sleep on the slots' condition, out of the
GIL's way, and are let in first come, first served.

A request that cannot get a slot within ``overflow_seconds`` runs anyway: slots held by
requests stuck on an unreachable service must not hold back the answers (a 503 within two
seconds, API.md) of everyone behind them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestSlots:
    """``count`` slots shared by one process's request threads (see the module's docstring)."""

    def __init__(self, count: int, *, overflow_seconds: float = 1.0):
        self.count = count
        self.overflow_seconds = overflow_seconds
        self._free = threading.Semaphore(count)
        self._held = threading.local()

    def holds(self) -> bool:
        """Whether this thread holds a slot now."""
        return getattr(self._held, "slot", False)

    def _take(self) -> None:
        self._held.slot = self._free.acquire(timeout=self.overflow_seconds)

    def _give_back(self) -> None:
        if self.holds():
            self._held.slot = False
            self._free.release()

    def middleware(self, app: WsgiApp) -> WsgiApp:
        """``app`` run inside a slot (its answer is a small JSON body, read by then)."""

        def in_slot(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self._take()
            try:
                return app(environ, start_response)
            finally:
                self._give_back()

        return in_slot

    @contextmanager
    def released(self) -> Iterator[None]:
        """Hand this thread's slot to others while it only waits (a long poll)."""
        held = self.holds()
        if held:
            self._give_back()
        try:
            yield
        finally:
            if held:
                self._take()
