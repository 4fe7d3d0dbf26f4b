"""The content-addressed result cache: same code, params, symbol, window and data, same outcome.

Entries live in one Redis hash per (code, params, window): the field is the symbol and its
data version, which the loader bumps whenever the symbol's bars or reference data change,
so an entry can never be stale, only unused. One hash per window means one round trip to
read a chunk's entries and one to write them. Only deterministic outcomes are stored
(API.md: the same script and data always give the same result): values and the script's
own errors, never a TimeoutError, MemoryError or crash, which depend on the machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from workers.keys import result_cache_key

TTL_SECONDS = 7 * 24 * 3600
_NOT_CACHED = frozenset(
    {"TimeoutError", "MemoryError", "RuntimeError", "WorkerLost", "Cancelled",
     "DataUnavailable", "UnknownSymbol", "NoData"}
)  # fmt: skip


@dataclass(frozen=True)
class CacheKeys:
    """Where a chunk's entries live: one hash, and a field per symbol that has a version."""

    key: str
    fields: dict[str, str]


def cache_keys(
    *,
    code_sha256: str,
    params: Mapping[str, Any],
    lookback: int,
    as_of: str,
    versions: Mapping[str, int],
    reference: Sequence[str] = (),
    reference_version: int | None = None,
) -> CacheKeys:
    """Where outcomes of this code, params and window live. With ``reference`` (a job's
    reference series) the whole market data's version is part of the key too, since
    ``@market`` moves with any bar: without such a version nothing is cached."""
    parts: list[Any] = [code_sha256, lookback, as_of, params]
    if reference:
        if reference_version is None:
            return CacheKeys(result_cache_key(""), {})
        parts += [list(reference), reference_version]
    head = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    key = result_cache_key(hashlib.sha256(head.encode()).hexdigest())
    return CacheKeys(key, {symbol: f"{symbol}|{v}" for symbol, v in versions.items()})


def fetch(client: redis.Redis, keys: CacheKeys) -> dict[str, dict[str, Any]]:
    """The cached outcomes of the chunk's symbols (symbol -> outcome)."""
    if not keys.fields:
        return {}
    symbols = list(keys.fields)
    raw = client.hmget(keys.key, [keys.fields[s] for s in symbols])
    return {s: json.loads(v) for s, v in zip(symbols, raw, strict=True) if v is not None}


def cacheable(outcome: Mapping[str, Any]) -> bool:
    err = outcome.get("error")
    return err is None or err.get("type") not in _NOT_CACHED


def store(
    client: redis.Redis, keys: CacheKeys, outcomes: Iterable[tuple[str, Mapping[str, Any]]]
) -> None:
    mapping = {
        keys.fields[symbol]: json.dumps(outcome, separators=(",", ":"))
        for symbol, outcome in outcomes
        if symbol in keys.fields and cacheable(outcome)
    }
    if mapping:
        pipe = client.pipeline(transaction=False)
        pipe.hset(keys.key, mapping=mapping)
        pipe.expire(keys.key, TTL_SECONDS)
        pipe.execute()


def fetch_many(client: redis.Redis, keys: list[CacheKeys]) -> list[dict[str, dict[str, Any]]]:
    """``fetch`` for many windows (an evaluation's dates) in one round trip."""
    pipe = client.pipeline(transaction=False)
    asked = []
    for k in keys:
        symbols = list(k.fields)
        asked.append(symbols)
        if symbols:
            pipe.hmget(k.key, [k.fields[s] for s in symbols])
    answers = iter(pipe.execute())
    found: list[dict[str, dict[str, Any]]] = []
    for symbols in asked:
        raw = next(answers) if symbols else []
        found.append({s: json.loads(v) for s, v in zip(symbols, raw, strict=True) if v is not None})
    return found


def store_many(
    pipe: redis.client.Pipeline,
    batches: Iterable[tuple[CacheKeys, Iterable[tuple[str, Mapping[str, Any]]]]],
    *,
    refreshed: set[str],
) -> None:
    """``store`` for many windows, queued on ``pipe``: the caller sends it with its other
    writes, one round trip. A key's expiry is set once per ``refreshed`` (a chunk's own set:
    a chunk writes the same windows many times)."""
    dumps = orjson.dumps
    for keys, outcomes in batches:
        fields = keys.fields
        mapping = {
            fields[symbol]: dumps(outcome)
            for symbol, outcome in outcomes
            if symbol in fields and cacheable(outcome)
        }
        if mapping:
            pipe.hset(keys.key, mapping=mapping)
            if keys.key not in refreshed:
                refreshed.add(keys.key)
                pipe.expire(keys.key, TTL_SECONDS)
