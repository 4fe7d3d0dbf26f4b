"""A fair share of the workers among users: what runs next is chosen when a worker is free.

Celery's queue is first in, first out, so one user's backlog used to hold everyone else's jobs
behind it. Now no Celery message carries work. Each user's pending work waits in a Redis list
of its own, in order; every piece of work pushed there publishes one ``calc.run_next`` message,
a token that carries no arguments. Whichever worker process runs a token takes the next entry
round-robin across the users with work waiting, at that moment (one atomic Lua script), so a
user's first chunk waits at most for a worker process to come free, however much another user
has queued. A long chunk gives the rest of its symbols back to the end of its user's list when
it has run for ``QUANTUM_SECONDS`` and another user is waiting (``workers.jobs``), so a free
process comes within a couple of seconds.

Keys:

- ``calc:fair:q:{owner}``   list: the owner's entries, JSON ``{"job", "chunk", "symbols"}`` (a
  chunk) or ``{"job", "start": true}`` (a job to plan); never pickle
- ``calc:fair:owners``      list: the round-robin ring, each owner with entries once
- ``calc:fair:lease:{token}``  the entry a token took, until it is done: a token redelivered
  after its worker died (``acks_late``) takes the same entry again, and the job's chunk-try
  count ends a chunk that keeps killing workers. Leases expire with the longest redelivery.

Cancelled or finished jobs' entries are skipped by the next token (it takes another). Tokens are
never fewer than live entries: each push publishes one, and a token that finds nothing is a
no-op. Every worker machine shares the lists, so the share is fair across machines too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from workers.keys import FAIR_QUEUES, FAIR_RING, fair_lease_key, fair_queue_key, owner_key
from workers.redis_text import text

RUN_NEXT = "calc.run_next"  # workers.tasks.run_next, published by name
LEASE_SECONDS = 3600  # longer than any redelivery (the broker's visibility timeout is 20 min)
QUANTUM_SECONDS = 1.0  # a chunk runs this long before it yields to another user waiting

# KEYS: the owner's list, the ring. ARGV: the owner, then the entries.
_PUSH = """
local before = redis.call('LLEN', KEYS[1])
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
if before == 0 then
  redis.call('LREM', KEYS[2], 0, ARGV[1])
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
return before
"""

# KEYS: the ring, the token's lease. ARGV: the lists' prefix, the lease's seconds.
# The next entry round-robin, leased to the token (or the one it already holds); nil if none.
_TAKE = """
local held = redis.call('GET', KEYS[2])
if held then
  return held
end
for _ = 1, redis.call('LLEN', KEYS[1]) do
  local owner = redis.call('LPOP', KEYS[1])
  if not owner then
    return nil
  end
  local list = ARGV[1] .. owner
  local entry = redis.call('LPOP', list)
  if redis.call('LLEN', list) > 0 then
    redis.call('RPUSH', KEYS[1], owner)
  end
  if entry then
    redis.call('SET', KEYS[2], entry, 'EX', ARGV[2])
    return entry
  end
end
return nil
"""


class FairQueue:
    """Pushes entries per owner and hands them out round-robin (see the module)."""

    def __init__(self, client: redis.Redis):
        self.r = client
        self._push = client.register_script(_PUSH)
        self._take = client.register_script(_TAKE)

    def push(self, owner: str | None, entries: list[dict[str, Any]]) -> None:
        if entries:
            args = [owner_key(owner), *(json.dumps(e, separators=(",", ":")) for e in entries)]
            self._push(keys=[fair_queue_key(owner), FAIR_RING], args=args)

    def take(self, token: str) -> dict[str, Any] | None:
        """The entry this token runs: the one it holds, or the next one round-robin."""
        raw = self._take(keys=[FAIR_RING, fair_lease_key(token)], args=[FAIR_QUEUES, LEASE_SECONDS])
        return None if raw is None else json.loads(raw)

    def done(self, token: str) -> None:
        """The token's entry is finished with (run, handed on, or dropped)."""
        self.r.delete(fair_lease_key(token))

    def others_waiting(self, owner: str | None) -> bool:
        """Whether another owner than ``owner`` has an entry waiting."""
        me = owner_key(owner)
        return any(text(o) != me for o in self.r.lrange(FAIR_RING, 0, -1))


def enqueue(celery: Celery, queue: FairQueue, owner: str | None, entry: dict[str, Any]) -> None:
    """Push ``entry`` to its owner's list and publish the token that will run it (or another
    user's entry first, if that is whose turn it is). The token's id names what it was
    published for, as Flower shows it, plus a suffix that keeps every token's lease its own."""
    queue.push(owner, [entry])
    what = "start" if entry.get("start") else str(entry["chunk"])
    symbols = entry.get("symbols") or []
    shown = f"(pushed with {entry['job']!r} {what}" + (
        f", {len(symbols)} symbols)" if symbols else ")"
    )
    celery.send_task(
        RUN_NEXT,
        task_id=f"{entry['job']}:{what}:{uuid.uuid4().hex[:8]}",
        argsrepr=shown,
        kwargsrepr="{}",
    )


@dataclass(frozen=True, slots=True)
class Share:
    """What a running chunk needs to give way: whether another user waits, and how to hand
    the rest of its symbols back to the end of its user's list."""

    others_waiting: Callable[[], bool]
    give_back: Callable[[list[str]], None]
    quantum_seconds: float = QUANTUM_SECONDS
