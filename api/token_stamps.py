"""Stamping tokens' ``last_used_at`` from one background thread per API process.

The stamp is a database write, and on SQLite every write waits for the one write lock, which
the workers' audit rows also take. A request thread that waited for it (even after sending its
answer) was a thread the next requests could not have: under a burst of new tokens, submits
queued behind the stamps. So requests only note that a token is due (``note``); this thread
writes the stamps, a moment later and many in one statement: a burst of new tokens (200
clients at once) costs one write, not one transaction per token on the API's CPU while the
burst is being answered. A stamp is best effort: one lost (database down, queue full) is
written again at the token's next use.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from db.session import session_scope
from db.tokens import stamp_used

log = logging.getLogger(__name__)

MAX_PENDING = 1000
GATHER_SECONDS = 0.5  # stamps noted this soon after the first are written with it
MAX_BATCH = 500  # tokens in one statement (well under any database's parameter limit)


class TokenStamper:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.pending: queue.Queue[int] = queue.Queue(MAX_PENDING)
        self.queued: set[int] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def note(self, token_id: int) -> None:
        """Stamp ``token_id`` soon; never waits."""
        with self.lock:
            if token_id in self.queued:
                return
            if self.thread is None or not self.thread.is_alive():  # (first use after a fork)
                self.thread = threading.Thread(target=self._run, name="token-stamps", daemon=True)
                self.thread.start()
            try:
                self.pending.put_nowait(token_id)
            except queue.Full:
                return
            self.queued.add(token_id)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Whether every noted stamp is written within ``timeout`` (for tests and shutdown)."""
        done = threading.Event()
        threading.Thread(target=lambda: (self.pending.join(), done.set()), daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            batch = [self.pending.get()]
            time.sleep(GATHER_SECONDS)
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            with self.lock:
                self.queued.difference_update(batch)
            try:
                with session_scope(self.engine) as session:
                    stamp_used(batch, session=session)
            except SQLAlchemyError:
                log.warning("token last_used_at not stamped", extra={"tokens": len(batch)})
            finally:
                for _ in batch:
                    self.pending.task_done()
