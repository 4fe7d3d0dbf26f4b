"""``ref`` in the sandbox: reference series reach the child as given, read-only, per window."""

from __future__ import annotations

import dataclasses
import json

from sandbox import wire
from sandbox.compiler import compile_script
from sandbox.executor import Limits, run_batch
from tests.sandbox.sample import sample_items

LIMITS = Limits(cpu_seconds=1.0, memory_mb=128, stdout_bytes=4096)


def with_reference(count: int = 3, days: int = 30):
    """Sample items sharing one reference mapping: a symbol with a gap (None) and @market."""
    items = sample_items(count, days)
    dates = items[0].dates
    spy = {
        "open": tuple(None if i == 5 else 100.0 + i for i in range(days)),
        "high": tuple(None if i == 5 else 101.0 + i for i in range(days)),
        "low": tuple(None if i == 5 else 99.0 + i for i in range(days)),
        "close": tuple(None if i == 5 else 100.5 + i for i in range(days)),
        "volume": tuple(None if i == 5 else 1000 + i for i in range(days)),
    }
    ref = {"SPY": spy, "@market": {"close": tuple(100.0 * 1.01**i for i in range(days))}}
    return [dataclasses.replace(item, dates=dates, ref=ref) for item in items], ref


def run(code: str, items) -> dict:
    return dict(run_batch(code, items, params={}, limits=LIMITS))


def test_reference_round_trips_on_the_wire_and_is_written_once():
    items, ref = with_reference()
    buffers = wire.encode(
        compile_script("result = 1"),
        items,
        params_json="{}",
        cpu_seconds=1.0,
        stdout_bytes=10,
        memory_mb=64,
    )
    header = buffers[1]
    decoded = list(wire.decode(memoryview(bytearray().join(buffers))).items())
    assert [d.ref for d in decoded] == [ref] * len(items)
    assert decoded[0].ref is decoded[1].ref  # shared in the child too
    one = len(
        wire.encode(
            compile_script("result = 1"),
            items[:1],
            params_json="{}",
            cpu_seconds=1.0,
            stdout_bytes=10,
            memory_mb=64,
        )[1]
    )
    assert len(header) < one + 2 * 400  # three symbols' records, one copy of the series


def test_a_script_reads_reference_series_aligned_with_its_dates():
    items, ref = with_reference()
    code = (
        "s = ref['SPY']\n"
        "result = {'n': len(ref['@market']['close']), 'last': ref['@market']['close'][-1],\n"
        "          'gap': 1 if s['close'][5] is None and s['volume'][5] is None else 0,\n"
        "          'vol': s['volume'][-1], 'names': len(list(ref)),\n"
        "          'has': 1 if ref.get('@sector') is None and '@market' in ref else 0}\n"
    )
    out = run(code, items)
    for item in items:
        value = out[item.symbol]["value"]
        assert value == {
            "n": len(item.dates),
            "last": ref["@market"]["close"][-1],
            "gap": 1,
            "vol": ref["SPY"]["volume"][-1],
            "names": 2,
            "has": 1,
        }


def test_reference_cannot_be_changed_by_a_script_nor_leak_to_the_next_symbol():
    items, ref = with_reference()
    attempts = [
        "ref['SPY'] = {}",
        "ref['SPY']['close'] = ()",
        "del ref['SPY']",
        "ref['@market']['close'][0] = 1.0",
        "ref.clear()",
        "ref['SPY'].update({'close': ()})",
    ]
    for attempt in attempts:
        guarded = f"try:\n    {attempt}\nexcept Exception as e:\n    pass\n"
        code = guarded + "result = ref['SPY']['close'][-1]"
        out = run(code, items)
        assert {s: o["value"] for s, o in out.items()} == {
            item.symbol: ref["SPY"]["close"][-1] for item in items
        }, attempt
        plain = run(attempt + "\nresult = 1", items[:1])
        (outcome,) = plain.values()
        assert outcome["error"] is not None, attempt
        assert outcome["error"]["type"] in {"SecurityError", "TypeError", "AttributeError"}, attempt


def test_a_job_without_reference_sees_an_empty_ref():
    items = sample_items(2, 20)
    out = run("result = len(ref) + (1 if ref.get('@market') is None else 0)", list(items))
    assert {o["value"] for o in out.values()} == {1}
    (missing,) = run("result = ref['@market']['close'][-1]", list(items[:1])).values()
    assert missing["error"]["type"] == "KeyError"


def test_a_window_of_a_longer_series_cuts_its_reference_the_same_way():
    items, ref = with_reference(1, 40)
    item = items[0]
    runs = [dataclasses.replace(item, start=0, stop=stop) for stop in (25, 30, 40)]
    code = "result = {'n': len(ref['SPY']['close']), 'last': ref['@market']['close'][-1]}"
    outcomes = list(run_batch(code, runs, params={}, limits=LIMITS))
    assert [o["value"] for _, o in outcomes] == [
        {"n": stop, "last": ref["@market"]["close"][stop - 1]} for stop in (25, 30, 40)
    ]
    assert json.dumps(ref)  # (plain data: nothing of ours reached the script)
