"""The chunk a worker hands its sandbox child: what goes in comes out, as a script sees it."""

from __future__ import annotations

import json
from array import array

from sandbox import wire
from sandbox.compiler import compile_script
from sandbox.executor import Limits, run_batch
from sandbox.runner import SymbolInput
from tests.sandbox.sample import sample_items


def round_trip(items: list[SymbolInput]) -> tuple[wire.Chunk, list[SymbolInput]]:
    script = compile_script("result = close[-1]")
    buffers = wire.encode(
        script,
        items,
        params_json=json.dumps({"window": 5}),
        cpu_seconds=0.5,
        stdout_bytes=100,
        memory_mb=64,
    )
    blob = bytearray().join(buffers)
    chunk = wire.decode(memoryview(blob))
    assert chunk.script == script
    assert (chunk.params_json, chunk.cpu_seconds, chunk.stdout_bytes, chunk.memory_mb) == (
        '{"window": 5}',
        0.5,
        100,
        64,
    )
    return chunk, list(chunk.items())


def test_tuples_come_back_exactly_with_their_types() -> None:
    items = list(sample_items(5, 60))
    _, decoded = round_trip(items)
    assert decoded == items
    for item in decoded:
        for series in (item.dates, item.open, item.high, item.low, item.close, item.volume):
            assert type(series) is tuple
        assert all(type(x) is float for x in item.close)
        assert all(type(x) is int for x in item.volume)


def packed(item: SymbolInput) -> SymbolInput:
    """``item`` with its series packed, as a worker's window cache hands them out."""
    return SymbolInput(item.symbol, item.dates, array("d", item.open), array("d", item.high),
                       array("d", item.low), array("d", item.close), array("q", item.volume),
                       item.info)  # fmt: skip


def test_packed_series_come_back_as_the_same_tuples() -> None:
    items = list(sample_items(3, 40))
    _, decoded = round_trip([packed(i) for i in items])
    assert decoded == items


def test_odd_values_and_lengths_survive() -> None:
    odd = SymbolInput(
        "ODD",
        ("2020-01-02", "2020-01-03"),
        (float("nan"), float("inf")),
        (-0.0, 1e308),
        (5e-324, -1e-300),
        (1.5, 2.5),
        (0, 2**62),
        {"name": "Ödd Co. ☃", "sector": None, "industry": ""},
    )
    empty = SymbolInput("EMPTY", (), (), (), (), (), (), {})
    uneven = SymbolInput("UNEVEN", ("2020-01-02",), (1.0, 2.0), (1.0,), (), (3.0,), (7,), {})
    _, (got_odd, got_empty, got_uneven) = round_trip([odd, empty, uneven])
    assert repr(got_odd) == repr(odd)  # nan included, which == would not show
    assert got_empty == empty
    assert got_uneven == uneven


def test_a_shared_window_of_days_is_sent_once_and_shared() -> None:
    items = list(sample_items(4, 50))
    copies = [
        SymbolInput(i.symbol, tuple(items[0].dates), i.open, i.high, i.low, i.close, i.volume, {})
        for i in items
    ]  # equal windows, distinct tuples (as the database gives them)
    _, decoded = round_trip(copies)
    assert all(item.dates is decoded[0].dates for item in decoded)
    assert decoded[0].dates == items[0].dates


def test_a_chunk_of_more_series_than_one_system_call_takes_arrives_whole() -> None:
    """300 symbols are 1,500 packed series, more than one ``writev`` may carry: each symbol
    still gets its own bars in the child, in order."""
    items = sample_items(300, 30)
    script = "result = {'o': open[0], 'h': high[1], 'l': low[2], 'c': close[-1], 'v': volume[-1]}"
    outcomes = list(run_batch(script, [packed(i) for i in items], params={}, limits=Limits()))
    assert [symbol for symbol, _ in outcomes] == [i.symbol for i in items]
    for (_, out), item in zip(outcomes, items, strict=True):
        expected = {"o": item.open[0], "h": item.high[1], "l": item.low[2], "c": item.close[-1]}
        assert out == {"value": {**expected, "v": item.volume[-1]}, "error": None, "stdout": ""}


def test_runs_of_one_symbol_share_its_series_and_each_sees_its_own_window() -> None:
    """An evaluation's runs of a symbol: the series go once, each run sees its slice."""
    (item,) = sample_items(1, 50)
    whole = packed(item)
    runs = [
        SymbolInput(
            item.symbol,
            item.dates,
            whole.open,
            whole.high,
            whole.low,
            whole.close,
            whole.volume,
            item.info,
            max(0, stop - 20),
            stop,
        )
        for stop in (5, 20, 35, 50)
    ]
    script = compile_script("result = close[-1]")
    one = wire.encode(
        script, runs[:1], params_json="{}", cpu_seconds=1, stdout_bytes=1, memory_mb=1
    )
    four = wire.encode(script, runs, params_json="{}", cpu_seconds=1, stdout_bytes=1, memory_mb=1)
    assert len(four) == len(one)  # the same five series, not twenty
    code = "result = {'n': len(dates), 'first': close[0], 'last': close[-1], 'v': volume[-1]}"
    outcomes = list(run_batch(code, runs, params={}, limits=Limits()))
    assert [symbol for symbol, _ in outcomes] == [item.symbol] * 4
    for (_, out), stop in zip(outcomes, (5, 20, 35, 50), strict=True):
        start = max(0, stop - 20)
        expected = {"n": stop - start, "first": item.close[start], "last": item.close[stop - 1],
                    "v": item.volume[stop - 1]}  # fmt: skip
        assert out == {"value": expected, "error": None, "stdout": ""}


def test_an_empty_series_does_not_stand_in_for_the_next_symbols() -> None:
    empty = SymbolInput("EMPTY", (), (), (), (), (), (), {})
    (item,) = sample_items(1, 10)
    _, (got_empty, got_item) = round_trip([empty, item])
    assert got_empty == empty
    assert got_item == item
