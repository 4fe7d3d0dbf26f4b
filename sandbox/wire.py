"""What the worker hands a sandbox child: a chunk's script, params, limits and bars, packed.

A child of the clean fork server (zygote.py) shares nothing with the worker, so the chunk
travels in a memory file: a ``marshal`` header (the code object, params, limits, and per
symbol its name, trading days, info and where its prices are), then every symbol's price
series as raw 8-byte values. The worker copies packed series as they are (its window cache
keeps them packed); the child maps the file and makes a symbol's tuples from it only when it
runs that symbol. A window of trading days that many symbols share is
written once and shared (tuples cannot be changed).

Only the worker writes these files and only our children read them: ``marshal`` is safe here
because nothing untrusted ever produces one.
"""

from __future__ import annotations

import marshal
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.compiler import CompiledScript
from sandbox.runner import SymbolInput

_FORMAT = 4  # marshal's format with references: shared objects are written once
_PREFIX = struct.Struct("<Q")  # the header's length
_SERIES = "ddddq"  # open, high, low, close (float64), volume (int64)
_VALUE_BYTES = 8  # of each of them


@dataclass(frozen=True, slots=True)
class Chunk:
    """A decoded request: everything a child needs to run its symbols."""

    script: CompiledScript
    params_json: str
    cpu_seconds: float
    stdout_bytes: int
    memory_mb: int
    records: tuple[tuple[Any, ...], ...]
    series: memoryview

    def items(self) -> Iterator[SymbolInput]:
        """The symbols' inputs, unpacked one at a time (the first runs before the rest unpack).

        Nothing here keeps a reference to a symbol's series once it is handed out: when its
        script is done with them they are freed, not left for the garbage collector to walk.
        """
        unpacked: tuple[tuple[int, tuple[int, ...]], list[tuple[Any, ...]]] | None = None
        for symbol, dates, info, offset, counts, start, stop, ref in self.records:
            if unpacked is None or unpacked[0] != (offset, counts):
                unpacked = None  # the last symbol's series are freed before the next unpack
                unpacked = ((offset, counts), self._series(offset, counts))
            yield SymbolInput(symbol, dates, *unpacked[1], info, start, stop, ref)

    def _series(self, offset: int, counts: tuple[int, ...]) -> list[tuple[Any, ...]]:
        values = []
        for typecode, count in zip(_SERIES, counts, strict=True):
            values.append(struct.unpack_from(f"={count}{typecode}", self.series, offset))
            offset += _VALUE_BYTES * count
        return values


def encode(
    script: CompiledScript,
    items: Sequence[SymbolInput],
    *,
    params_json: str,
    cpu_seconds: float,
    stdout_bytes: int,
    memory_mb: int,
) -> list[bytes | array]:
    """The request as buffers to write one after the other (the series as they are: the
    worker's window cache keeps them packed, and they are not copied into one buffer)."""
    series: list[array] = []
    records = []
    windows: dict[tuple[str, ...], tuple[str, ...]] = {}
    # Runs that share their series objects (an evaluation's runs of one symbol) share them on
    # the wire too: written once, the runs' records pointing at them.
    written: dict[tuple[int, ...], tuple[int, tuple[int, ...]]] = {}
    shared_dates: dict[int, tuple[str, ...]] = {}
    references: dict[int, dict[str, dict[str, tuple[Any, ...]]]] = {}
    offset = 0
    for item in items:
        columns = (item.open, item.high, item.low, item.close, item.volume)
        identity = tuple(map(id, columns))
        place = written.get(identity)
        if place is None:
            start = offset
            counts = []
            for typecode, values in zip(_SERIES, columns, strict=True):
                packed = _packed(typecode, values)
                series.append(packed)
                counts.append(len(packed))
                offset += _VALUE_BYTES * len(packed)
            place = written[identity] = (start, tuple(counts))
        dates = shared_dates.get(id(item.dates))
        if dates is None:
            dates = shared_dates[id(item.dates)] = windows.setdefault(item.dates, item.dates)
        # Reference series (dicts of tuples) go in the header; a mapping that runs share is
        # one object, which marshal writes once.
        ref = None if not item.ref else _plain_reference(item.ref, references)
        records.append((item.symbol, dates, item.info, *place, item.start, item.stop, ref))
    limits = (float(cpu_seconds), int(stdout_bytes), int(memory_mb))
    header = marshal.dumps(
        (script.code, script.sha256, script.subscripts, params_json, limits, tuple(records)),
        _FORMAT,
    )
    return [_PREFIX.pack(len(header)), header, *series]


def decode(blob: memoryview) -> Chunk:
    """The request in ``blob`` (which must stay alive as long as the chunk is used)."""
    (length,) = _PREFIX.unpack_from(blob)
    start = _PREFIX.size
    header = marshal.loads(blob[start : start + length])  # noqa: S302 - see the docstring
    code, sha256, subscripts, params_json, limits, records = header
    script = CompiledScript(code, sha256, subscripts)
    return Chunk(script, params_json, *limits, records, blob[start + length :])


def _plain_reference(
    ref: Any, done: dict[int, dict[str, dict[str, tuple[Any, ...]]]]
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """``ref`` as plain dicts of tuples (what marshal writes), made once per shared object."""
    plain = done.get(id(ref))
    if plain is None:
        plain = done[id(ref)] = {
            str(name): {str(key): tuple(values) for key, values in fields.items()}
            for name, fields in ref.items()
        }
    return plain


def _packed(typecode: str, values: Sequence[Any]) -> array:
    """The series packed: as it is when it already is (the worker's window cache)."""
    if type(values) is array and values.typecode == typecode:
        return values
    return array(typecode, values)
