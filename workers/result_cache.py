"""The content-addressed result cache: same code, params, symbol, window and data, same outcome.

The key hashes the code's SHA-256, the params (canonical JSON), the symbol, the window
(lookback and the resolved ``as_of``) and the symbol's data version, which the loader bumps
whenever the symbol's bars or reference data change. So an entry can never be stale; it is
simply no longer asked for. Only deterministic outcomes are stored (API.md: the same script
and data always give the same result): values and the script's own errors, never a
TimeoutError, MemoryError or crash, which depend on the machine and its load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from workers.jobstore import PREFIX

TTL_SECONDS = 7 * 24 * 3600
_NOT_CACHED = frozenset(
    {
        "TimeoutError",
        "MemoryError",
        "RuntimeError",
        "WorkerLost",
        "Cancelled",
        "DataUnavailable",
        "UnknownSymbol",
        "NoData",
    }
)


def cache_keys(
    *,
    code_sha256: str,
    params: Mapping[str, Any],
    lookback: int,
    as_of: str,
    versions: Mapping[str, int],
) -> dict[str, str]:
    """symbol -> cache key, for the symbols that have a data version (others are never cached)."""
    head = json.dumps([code_sha256, lookback, as_of, params], sort_keys=True, separators=(",", ":"))
    base = hashlib.sha256(head.encode()).hexdigest()
    return {
        symbol: f"{PREFIX}:rc:{hashlib.sha256(f'{base}|{symbol}|{version}'.encode()).hexdigest()}"
        for symbol, version in versions.items()
    }


def fetch(client: redis.Redis, keys: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The cached outcomes among ``keys`` (symbol -> outcome)."""
    if not keys:
        return {}
    symbols = list(keys)
    raw = client.mget([keys[s] for s in symbols])
    return {s: json.loads(v) for s, v in zip(symbols, raw, strict=True) if v is not None}


def cacheable(outcome: Mapping[str, Any]) -> bool:
    err = outcome.get("error")
    return err is None or err.get("type") not in _NOT_CACHED


def store(
    client: redis.Redis, keys: Mapping[str, str], outcomes: Iterable[tuple[str, Mapping[str, Any]]]
) -> None:
    pipe = client.pipeline(transaction=False)
    count = 0
    for symbol, outcome in outcomes:
        key = keys.get(symbol)
        if key is not None and cacheable(outcome):
            pipe.set(key, json.dumps(outcome, separators=(",", ":")), ex=TTL_SECONDS)
            count += 1
    if count:
        pipe.execute()
