"""A job's reference series (API.md, "Reference series"), loaded once per chunk.

A chunk reads its reference symbols' bars with one query over the span of its symbols'
windows, and takes the ``@market``/``@sector`` index levels from a cache: this process's
(the newest data version it saw) or Redis's (shared by every worker), keyed by the market
data's version, which any load that changes a bar moves; only on a miss does one worker
compute them (a Redis lock keeps the others from doing the same at once). Each distinct
window of dates (and, for ``@sector``, sector) then gets one aligned mapping, shared by
every symbol of the chunk with that window: the sandbox writes a shared mapping once.

``/execute`` and ``/evaluate`` both use ``load_reference`` and ``attach``: an evaluation's
runs share their symbol's whole series and the mapping aligned with it, each run cutting
its window out of both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy.orm import Session

from db.market_data import Bars
from db.market_index import IndexLevels, bars_between, data_version, index_levels
from sandbox.runner import SymbolInput
from workers.keys import reference_index_key

MARKET = "@market"
SECTOR = "@sector"
BUILT_INS = (MARKET, SECTOR)
MAX_REFERENCE_SYMBOLS = 10
FIELDS = ("open", "high", "low", "close", "volume")
INDEX_TTL_SECONDS = 7 * 24 * 3600
_LOCK_SECONDS = 120  # longer than computing the levels takes on a large database
_WAIT_FOR_OTHER_SECONDS = 60.0

Aligned = dict[str, dict[str, tuple[Any, ...]]]


def reference_symbols(reference: Sequence[str]) -> list[str]:
    """The real symbols among a job's reference names (the built-ins left out)."""
    return [name for name in reference if name not in BUILT_INS]


@dataclass
class ReferenceData:
    """What a chunk's symbols' ``ref`` is made from, with the mappings made so far."""

    names: tuple[str, ...]
    levels: IndexLevels | None
    bars: dict[str, Bars]
    _aligned: dict[tuple[tuple[str, ...], str | None], Aligned] = field(default_factory=dict)
    _positions: dict[str, dict[str, int]] = field(default_factory=dict)

    def aligned(self, dates: tuple[str, ...], sector: str | None) -> Aligned:
        """Name -> field -> values on ``dates`` (None where the reference has no bar)."""
        wants_sector = SECTOR in self.names
        key = (dates, sector if wants_sector else None)
        found = self._aligned.get(key)
        if found is not None:
            return found
        # Series other windows already made are reused when these dates are theirs too (the
        # same @market tuple in every sector's mapping: written once on the wire).
        base = self._aligned.get((dates, None)) if wants_sector else None
        if base is None:
            base = {}
            for name in self.names:
                if name == MARKET:
                    base[name] = {"close": self._levels_on(dates, self._market())}
                elif name != SECTOR:
                    base[name] = self._bars_on(dates, name)
            if wants_sector:
                self._aligned[(dates, None)] = base
        result = dict(base)
        if wants_sector:
            result[SECTOR] = {"close": self._sector_on(dates, sector)}
        # (Keep SECTOR's place in the order the job named them.)
        result = {name: result[name] for name in self.names}
        self._aligned[key] = result
        return result

    def _market(self) -> tuple[float, ...]:
        return self.levels.market if self.levels is not None else ()

    def _sector_on(self, dates: tuple[str, ...], sector: str | None) -> tuple[Any, ...]:
        if sector is None or self.levels is None:
            return (None,) * len(dates)
        levels = self.levels.sectors.get(sector)
        if levels is None:  # a sector without a single pair of bars: its level stays at 100
            levels = (100.0,) * len(self.levels.dates)
        return self._levels_on(dates, levels)

    def _levels_on(self, dates: tuple[str, ...], levels: tuple[float, ...]) -> tuple[Any, ...]:
        positions = self._position_map("", self.levels.dates if self.levels else ())
        return tuple(None if (i := positions.get(d)) is None else levels[i] for d in dates)

    def _bars_on(self, dates: tuple[str, ...], symbol: str) -> dict[str, tuple[Any, ...]]:
        bars = self.bars.get(symbol)
        if bars is None:
            nothing = (None,) * len(dates)
            return dict.fromkeys(FIELDS, nothing)
        positions = self._position_map(symbol, bars.dates)
        where = [positions.get(d) for d in dates]
        return {
            name: tuple(None if i is None else series[i] for i in where)
            for name, series in zip(
                FIELDS, (bars.open, bars.high, bars.low, bars.close, bars.volume), strict=True
            )
        }

    def _position_map(self, key: str, dates: Sequence[str]) -> dict[str, int]:
        positions = self._positions.get(key)
        if positions is None:
            positions = self._positions[key] = {d: i for i, d in enumerate(dates)}
        return positions


def load_reference(
    reference: Sequence[str],
    items: Sequence[SymbolInput | Bars],
    *,
    session: Session,
    client: redis.Redis,
    database: str,
) -> ReferenceData | None:
    """The chunk's reference data (None when the job has no reference): its symbols' bars
    over the span of ``items``' windows (runs' inputs, or an evaluation's whole series),
    and the index levels if a built-in is named."""
    if not reference or not items:
        return None
    names = tuple(dict.fromkeys(reference))
    levels = None
    if any(name in BUILT_INS for name in names):
        levels = cached_index_levels(session=session, client=client, database=database)
    symbols = reference_symbols(names)
    bars: dict[str, Bars] = {}
    if symbols:
        first = min(item.dates[0] for item in items if item.dates)
        last = max(item.dates[-1] for item in items if item.dates)
        bars = bars_between(
            symbols,
            session=session,
            first=dt.date.fromisoformat(first),
            last=dt.date.fromisoformat(last),
        )
    return ReferenceData(names, levels, bars)


def attach(items: Sequence[SymbolInput], data: ReferenceData | None) -> list[SymbolInput]:
    """``items`` with their ``ref`` (aligned with each item's own dates)."""
    if data is None:
        return list(items)
    return [
        dataclasses.replace(item, ref=data.aligned(item.dates, (item.info or {}).get("sector")))
        for item in items
    ]


# -- the index levels' caches ---------------------------------------------------------------


class _ProcessCache:
    """The levels of the newest data version this process used (one per market database)."""

    lock = threading.Lock()
    levels: dict[str, tuple[int, IndexLevels]] = {}  # noqa: RUF012 - per process, by design


def cached_index_levels(*, session: Session, client: redis.Redis, database: str) -> IndexLevels:
    """The index levels of the data as it is now: computed at most once per data version."""
    version = data_version(session=session)
    if version is None:  # a database without data versions: nothing can be cached safely
        return index_levels(session=session)
    with _ProcessCache.lock:
        held = _ProcessCache.levels.get(database)
    if held is not None and held[0] == version:
        return held[1]
    levels = _from_redis_or_computed(version, session=session, client=client, database=database)
    with _ProcessCache.lock:
        _ProcessCache.levels[database] = (version, levels)
    return levels


def index_key(database: str, version: int) -> str:
    digest = hashlib.sha256(database.encode()).hexdigest()[:16]
    return reference_index_key(digest, version)


def _from_redis_or_computed(
    version: int, *, session: Session, client: redis.Redis, database: str
) -> IndexLevels:
    key = index_key(database, version)
    raw = client.get(key)
    if raw is None and not client.set(f"{key}:lock", "1", nx=True, ex=_LOCK_SECONDS):
        # Another worker is computing these very levels: wait for them rather than do it too.
        end = time.monotonic() + _WAIT_FOR_OTHER_SECONDS
        while raw is None and time.monotonic() < end and client.exists(f"{key}:lock"):
            time.sleep(0.1)
            raw = client.get(key)
    if raw is not None:
        return IndexLevels.from_json(json.loads(raw))
    try:
        levels = index_levels(session=session)
        client.set(key, json.dumps(levels.to_json(), separators=(",", ":")), ex=INDEX_TTL_SECONDS)
    finally:
        client.delete(f"{key}:lock")
    return levels
