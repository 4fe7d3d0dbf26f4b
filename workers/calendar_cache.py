"""An evaluation's calendar, kept per universe and market-data version.

``POST /evaluate`` fixes its rebalance dates from the calendar of the job's symbols (API.md),
a query over every bar of every symbol (a tenth of a second for 500 symbols on SQLite, before
any worker can start). Analysts evaluate one universe again and again: the calendar is kept
in Redis under the symbols and the market data's version (``db.market_index.data_version``,
which moves with any bar), so it is never stale, only unused. A database without versions
is never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence

import orjson
import redis
from sqlalchemy.orm import Session

from db.evaluation_data import trading_calendar
from db.market_index import data_version
from workers.keys import calendar_key

TTL_SECONDS = 24 * 3600


def job_calendar(client: redis.Redis, symbols: Sequence[str], *, session: Session) -> list[str]:
    """The sorted dates on which any of ``symbols`` has a bar."""
    version = data_version(session=session)
    if version is None:
        return trading_calendar(symbols, session=session)
    universe = hashlib.sha256("\n".join(sorted(set(symbols))).encode()).hexdigest()
    key = calendar_key(universe, version)
    try:
        cached = client.get(key)
    except redis.RedisError:  # the cache is a shortcut: without Redis, ask the database
        cached = None
    if cached is not None:
        return orjson.loads(cached)
    calendar = trading_calendar(symbols, session=session)
    with contextlib.suppress(redis.RedisError):
        client.set(key, orjson.dumps(calendar), ex=TTL_SECONDS)
    return calendar
