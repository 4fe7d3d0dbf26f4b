"""The result cache: a repeated job is served from it, and any change of input misses it."""

from __future__ import annotations

import csv
import gzip

import pytest

from tests.api.helpers import run_job
from tests.conftest import SAMPLE_PRICES

pytestmark = pytest.mark.usefixtures("celery_worker")

CODE = "print('sma of', symbol)\nresult = sma(close, params['n'])[-1] if symbol != 'AMZN' else 1/0"
SYMBOLS = ["AAPL", "MSFT", "AMZN", "NOPE"]


def test_second_run_is_served_from_the_cache_with_the_same_answer(client):
    first = run_job(client, {"script": CODE, "symbols": SYMBOLS, "params": {"n": 5}})
    second = run_job(client, {"script": CODE, "symbols": SYMBOLS, "params": {"n": 5}})
    assert first["cache_hits"] == 0
    # Values and the script's own errors are cached; an unknown symbol is not.
    assert second["cache_hits"] == 3
    for key in ("results", "errors", "stdout"):
        assert second[key] == first[key]
    other_params = run_job(client, {"script": CODE, "symbols": SYMBOLS, "params": {"n": 6}})
    assert other_params["cache_hits"] == 0
    other_window = run_job(
        client, {"script": CODE, "symbols": SYMBOLS, "params": {"n": 5}, "lookback": 100}
    )
    assert other_window["cache_hits"] == 0
    other_code = run_job(client, {"script": CODE + "\n", "symbols": SYMBOLS, "params": {"n": 5}})
    assert other_code["cache_hits"] == 0


def test_changed_bars_miss_the_cache(client, settings, tmp_path):
    from db.loader import load_prices_csv
    from db.session import make_engine, session_scope

    body = {"script": "result = close[-1]", "symbols": ["AAPL", "MSFT"]}
    run_job(client, body)
    assert run_job(client, body)["cache_hits"] == 2
    # Reload AAPL's newest bar with another close: the loader bumps AAPL's data version.
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as f:
        rows = [r for r in csv.reader(f)]
    header, last = rows[0], [r for r in rows[1:] if r[0] == "AAPL"][-1]
    changed = tmp_path / "aapl.csv"
    original = list(last)
    last[5] = str(float(last[5]) + 1.0)
    last[3] = str(max(float(last[3]), float(last[5])))  # keep high >= close
    with open(changed, "w", newline="") as f:
        csv.writer(f).writerows([header, last])
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            load_prices_csv(changed, session=session)
        job = run_job(client, body)
        assert job["cache_hits"] == 1  # MSFT from the cache, AAPL recomputed
        assert job["results"]["AAPL"] == pytest.approx(float(last[5]))
    finally:
        with open(changed, "w", newline="") as f:
            csv.writer(f).writerows([header, original])
        with session_scope(engine) as session:
            load_prices_csv(changed, session=session)
        engine.dispose()
