"""A worker process's long-lived objects: settings, Redis client, database engines.

Built lazily on first use and rebuilt after fork, so no socket is shared
between the parent and its pool processes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from sqlalchemy.engine import Engine

from db.session import make_engine
from settings import Settings
from workers.bars_cache import BarsCache
from workers.durable import after_finish
from workers.jobstore import JobStore


@dataclass
class Runtime:
    settings: Settings
    _redis: redis.Redis | None = None
    _engines: dict[str, Engine] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _bars_cache: BarsCache | None = None

    @property
    def bars_cache(self) -> BarsCache:
        if self._bars_cache is None:
            self._bars_cache = BarsCache(self.settings.bars_cache_bars)
        return self._bars_cache

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2
            )
        return self._redis

    def store(self) -> JobStore:
        return JobStore(
            self.redis,
            ttl_seconds=self.settings.job_ttl_seconds,
            queue_timeout=self.settings.queue_timeout_seconds,
            on_finish=lambda store, job: after_finish(store, job, self.app_engine),
        )

    def engine(self, url: str) -> Engine:
        with self._lock:
            if url not in self._engines:
                self._engines[url] = make_engine(url)
            return self._engines[url]

    @property
    def app_engine(self) -> Engine:
        return self.engine(self.settings.database_url)

    @property
    def market_engine(self) -> Engine:
        return self.engine(self.settings.market_data_url_or_default)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()


_current: Runtime | None = None


def configure(settings: Settings) -> Runtime:
    global _current  # noqa: PLW0603 - one runtime per process, replaced only by configure
    if _current is not None:
        _current.close()
    _current = Runtime(settings)
    return _current


def current() -> Runtime:
    global _current  # noqa: PLW0603 - built on first use in a worker process
    if _current is None:
        from workers.celery_app import app

        _current = Runtime(app.conf.calc_settings)
    return _current


def reset_after_fork() -> None:
    """Drop inherited connections without closing the parent's sockets."""
    global _current  # noqa: PLW0603 - see above
    if _current is not None:
        for engine in _current._engines.values():
            engine.dispose(close=False)
        _current = Runtime(_current.settings)
