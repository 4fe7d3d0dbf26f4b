"""A per-process cache of loaded windows of bars, keyed by the symbol's data version.

Analysts re-run a script over the same universe and window many times an hour; reading
and building the same 50,000 bars again is most of a job's cost. Each worker process
keeps the windows it loaded, keyed by (database, symbol, data version, as_of, lookback):
a changed symbol has a new version, so an entry is never stale, only unused. Symbols of a
database without data versions are never cached. Bounded by a total number of bars
(least recently used windows go first). Prices are kept packed (``array('d')``, 8 bytes a
value instead of a 32-byte float object) and handed to the sandbox packed, which copies
them to its child as they are (only the child makes the tuples a script sees), so a
5,000-symbol universe of a year's bars fits in about 60 MB. Nothing here is needed by
any other worker.
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from db.market_data import Bars, ChunkData, load_chunk

Key = tuple[str, str, int, str, int]


@dataclass(frozen=True, slots=True)
class Packed:
    """A window of bars, packed."""

    dates: tuple[str, ...]
    open: array
    high: array
    low: array
    close: array
    volume: array

    @classmethod
    def of(cls, bars: Bars) -> Packed:
        return cls(
            tuple(sys.intern(d) for d in bars.dates),  # most windows share their trading days
            array("d", bars.open),
            array("d", bars.high),
            array("d", bars.low),
            array("d", bars.close),
            array("q", bars.volume),
        )

    def as_bars(self) -> Bars:
        """The window, still packed (callers must not change the arrays)."""
        return Bars(self.dates, self.open, self.high, self.low, self.close, self.volume)


@dataclass(frozen=True, slots=True)
class Window:
    """One symbol's cached window: its bars (None: known, but no bars there) and info."""

    bars: Packed | None
    info: dict[str, Any]


class BarsCache:
    def __init__(self, max_bars: int):
        self.max_bars = max_bars
        self._entries: OrderedDict[Key, Window] = OrderedDict()
        self._bars = 0
        self._lock = threading.Lock()

    def lookup(self, keys: Mapping[str, Key]) -> dict[str, Window]:
        found: dict[str, Window] = {}
        with self._lock:
            for symbol, key in keys.items():
                window = self._entries.get(key)
                if window is not None:
                    self._entries.move_to_end(key)
                    found[symbol] = window
        return found

    def remember(self, keys: Mapping[str, Key], data: ChunkData) -> None:
        """Keep the windows just loaded for the symbols that have a key (a data version)."""
        with self._lock:
            for symbol, key in keys.items():
                if symbol not in data.known or key in self._entries:
                    continue
                bars = data.bars.get(symbol)
                packed = Packed.of(bars) if bars is not None else None
                self._entries[key] = Window(packed, dict(data.info.get(symbol) or {}))
                self._bars += len(bars.dates) if bars is not None else 1
            while self._bars > self.max_bars and self._entries:
                _, old = self._entries.popitem(last=False)
                self._bars -= len(old.bars.dates) if old.bars is not None else 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bars = 0

    def __len__(self) -> int:
        return len(self._entries)


def window_keys(
    database: str, versions: Mapping[str, int], symbols: Sequence[str], as_of: str, lookback: int
) -> dict[str, Key]:
    return {s: (database, s, versions[s], as_of, lookback) for s in symbols if s in versions}


def merge(cached: Mapping[str, Window], loaded: ChunkData) -> ChunkData:
    """One ChunkData from cached windows and freshly loaded ones."""
    bars = dict(loaded.bars)
    info = dict(loaded.info)
    known = set(loaded.known)
    for symbol, window in cached.items():
        known.add(symbol)
        info[symbol] = dict(window.info)
        if window.bars is not None:
            bars[symbol] = window.bars.as_bars()
    return ChunkData(bars=bars, info=info, known=frozenset(known))


def load_through(
    cache: BarsCache,
    database: str,
    symbols: list[str],
    versions: Mapping[str, int],
    *,
    session: Session,
    lookback: int,
    as_of: str | None,
    hold: bool = True,
) -> ChunkData:
    """A chunk's bars: the windows this process already holds, the rest with one query (and
    then held, unless not ``hold``: a job whose windows outgrow the cache would only push out
    its own). ``as_of`` is the window's last date (None: the newest bars)."""
    if not hold:
        versions = {}
    keys = window_keys(database, versions, symbols, as_of or "", lookback)
    cached = cache.lookup(keys)
    rest = [s for s in symbols if s not in cached]
    day = date.fromisoformat(as_of) if as_of else None
    loaded = load_chunk(rest, session=session, lookback=lookback, as_of=day)
    cache.remember(keys, loaded)
    return merge(cached, loaded) if cached else loaded
