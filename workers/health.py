"""Which workers are alive, from heartbeats they keep fresh in Redis, and a Redis probe.

Each Celery worker (node) stamps ``calc:workers`` (a sorted set: node name -> time of its last
beat) every ``BEAT_SECONDS`` from its main process, on the worker's own timer: the main process
only consumes and dispatches, so it beats on while every pool process is busy with a chunk.
``/health`` then reads one key instead of broadcasting a ping and waiting for replies, which
took 0.5-1 s a call and, when a busy worker answered late, gave false 503s (27 of 100 idle
calls). A worker counts as alive until ``ALIVE_SECONDS`` after its last beat: a worker that
was killed, or lost Redis, stops counting within that time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import bootsteps

from workers.keys import SANDBOX, WORKERS
from workers.redis_text import text

log = logging.getLogger(__name__)

WORKERS_KEY = WORKERS
SANDBOX_KEY = SANDBOX
REFUSED = "refused"  # a pool process whose fork server refused to run user code (strict mode)
BEAT_SECONDS = 2.0
ALIVE_SECONDS = 30.0
FORGET_SECONDS = 24 * 3600.0  # entries of workers gone this long are dropped from the set
# A beat runs on the worker's event loop: with Redis unreachable it must not stall it long.
BEAT_REDIS_TIMEOUT_SECONDS = 0.5


def beat(client: redis.Redis, node: str, *, now: float | None = None) -> None:
    """Stamp ``node`` alive now (and forget workers gone for a day)."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    pipe.zadd(WORKERS_KEY, {node: now})
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now - FORGET_SECONDS)
    pipe.execute()


def live_workers(client: redis.Redis, *, now: float | None = None) -> tuple[int, str | None]:
    """How many workers beat within ``ALIVE_SECONDS``, and the weakest sandbox confinement
    they reported (``full``, ``relaxed (missing: ...)``, ``refused``; None if none said yet).
    One Redis round trip; raises ``redis.RedisError`` when Redis cannot be reached."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    pipe.zrangebyscore(WORKERS_KEY, now - ALIVE_SECONDS, "+inf")
    pipe.hgetall(SANDBOX_KEY)
    alive, levels = pipe.execute()
    reported = {text(levels[node]) for node in alive if node in levels}
    return len(alive), _weakest(reported)


def report_confinement(client: redis.Redis, node: str, level: str) -> None:
    """Record what confinement ``node``'s pool processes got (each one writes it at start;
    they share a kernel and settings, so they agree)."""
    client.hset(SANDBOX_KEY, node, level)


def forget_confinement(client: redis.Redis, node: str) -> None:
    """A worker starting anew: what it reported before (a refusal, say) no longer holds."""
    client.hdel(SANDBOX_KEY, node)


def _weakest(levels: set[str]) -> str | None:
    if not levels:
        return None
    if REFUSED in levels:
        return REFUSED
    relaxed = sorted(level for level in levels if level != "full")
    return relaxed[0] if relaxed else "full"


class Heartbeat(bootsteps.StartStopStep):
    """The worker's heartbeat (Celery's bootstep recipe: a repeated call on the worker's timer)."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.client: redis.Redis | None = None

    def start(self, worker: Any) -> None:
        self.client = redis.Redis.from_url(
            worker.app.conf.calc_settings.redis_url,
            socket_timeout=BEAT_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=BEAT_REDIS_TIMEOUT_SECONDS,
        )
        self._beat(worker)  # alive from the start, not a beat later
        self.tref = worker.timer.call_repeatedly(BEAT_SECONDS, self._beat, (worker,), priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def _beat(self, worker: Any) -> None:
        if self.client is None:
            return
        try:
            beat(self.client, worker.hostname)
        except redis.RedisError as exc:  # Redis down: the worker stops counting as alive
            log.warning("heartbeat not written", extra={"error": type(exc).__name__})
