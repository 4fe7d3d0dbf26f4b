"""A worker process's long-lived objects: settings, Redis client, database engines.

Built lazily on first use; ``workers.celery_app`` keeps one per process and makes a fresh one
after fork, so no socket is shared between the parent and its pool processes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from sqlalchemy.engine import Engine

from db.session import make_engine
from settings import Settings
from workers.bars_cache import BarsCache
from workers.durable import durable_store
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
        return durable_store(self.redis, self.settings, self.app_engine)

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

    def after_fork(self) -> Runtime:
        """A fresh runtime for a forked child; the parent's connections are left open to it."""
        for engine in self._engines.values():
            engine.dispose(close=False)
        return Runtime(self.settings)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()
