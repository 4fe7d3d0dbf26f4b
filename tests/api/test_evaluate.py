"""POST /evaluate through the real app, Redis, database and a Celery worker, on real data."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time

import orjson
import pytest
from sqlalchemy import select

import db.market_data
from db.models import Execution
from db.session import make_engine, session_scope
from tests.api.helpers import BASE, PANEL_HEADER_1_5, closes, run_job, wait_done
from workers.celery_app import worker_runtime
from workers.evaluation_finish import evaluate as figures_of
from workers.evaluation_plan import EvaluationPlan, PlanError, plan_dates
from workers.keys import FORWARD_PART, job_part
from workers.panel import PanelStore
from workers.runtime import Runtime

pytestmark = pytest.mark.usefixtures("celery_worker")

REVERSAL = "result = -(close[-1] / close[-21] - 1)"
# BHF and BHGE are listed late in the sample (2017): their early dates are NoData.
SYMBOLS = ["AAPL", "MSFT", "AMZN", "IBM", "CSCO", "BHF", "BHGE", "GS", "BAC", "C", "HD", "CAT"]


def evaluate(client, body: dict, *, wait: float = 20):
    return client.post(f"{BASE}/evaluate", json={**body, "wait": wait})


def run_evaluation(client, body: dict, timeout: float = 120.0) -> dict:
    response = evaluate(client, body)
    assert response.status_code in (200, 202), response.get_json()
    job = response.get_json()
    return job if response.status_code == 200 else wait_done(client, job["job_id"], timeout)


def panel_rows(client, job_id: str) -> list[dict[str, str]]:
    response = client.get(f"{BASE}/jobs/{job_id}/panel.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


BODY = {
    "script": REVERSAL,
    "symbols": SYMBOLS,
    "start": "2017-01-03",
    "end": "2017-06-30",
    "every": 5,
    "horizons": [1, 5],
    "quantiles": 3,
}


def test_an_evaluation_runs_every_symbol_date_point_in_time(client):
    job = run_evaluation(client, BODY)
    assert job["kind"] == "evaluation"
    assert job["status"] == "completed"
    ev = job["evaluation"]
    assert "results" not in job and "stdout" not in job
    assert ev["symbols"] == len(SYMBOLS)
    assert job["progress"] == {
        "done": ev["dates"] * len(SYMBOLS),
        "total": ev["dates"] * len(SYMBOLS),
    }
    assert ev["runs"] == ev["dates"] * len(SYMBOLS)
    assert 0.7 < ev["coverage"] < 1  # the late listings have no value at first
    assert ev["errors_by_type"].get("NoData", 0) > 0
    assert set(ev["horizons"]) == {"1", "5"}
    for figures in ev["horizons"].values():
        assert len(figures["quantile_returns"]) == 3
        assert -1 <= figures["ic_mean"] <= 1
        assert figures["ic_dates"] == ev["dates"]
    rows = panel_rows(client, job["job_id"])
    assert list(rows[0]) == PANEL_HEADER_1_5
    assert len(rows) == ev["dates"] * len(SYMBOLS)
    # Each value is the script on the bars up to its date, as POST /execute with as_of.
    aapl = closes("AAPL")
    for row in rows:
        if row["symbol"] != "AAPL":
            continue
        seen = [c for d, c in aapl if d <= row["date"]]
        assert float(row["value"]) == -(seen[-1] / seen[-21] - 1)
        later = [c for d, c in aapl if d > row["date"]]
        assert float(row["forward_1"]) == later[0] / seen[-1] - 1


def test_point_in_time_values_equal_execute_with_as_of(client):
    code = "result = {'v': sum(close[-5:]) / 5 - close[-1], 'n': len(dates)}"
    body = {**BODY, "script": code, "field": "v", "lookback": 30, "every": 7}
    job = run_evaluation(client, body)
    rows = panel_rows(client, job["job_id"])
    by_date: dict[str, dict[str, str]] = {}
    for row in rows:
        by_date.setdefault(row["date"], {})[row["symbol"]] = row["value"]
    checked = 0
    for day, values in by_date.items():
        response = client.post(
            f"{BASE}/execute",
            json={"script": code, "symbols": SYMBOLS, "lookback": 30, "as_of": day, "wait": 20},
        )
        executed = response.get_json()
        for symbol in SYMBOLS:
            result = executed["results"][symbol]
            if result is None:
                assert values[symbol] == ""
                assert executed["errors"][symbol]["type"] == "NoData"
            else:
                assert float(values[symbol]) == result["v"]
                checked += 1
    assert checked > 100


def test_a_script_that_fails_on_some_dates_and_dicts_without_field(client):
    code = "x = close[-1]\nif int(x) % 3 == 0:\n    result = 1 / 0\nresult = {'a': x}"
    job = run_evaluation(client, {**BODY, "script": code})
    ev = job["evaluation"]
    assert job["status"] == "completed"
    # Without field every run that returned a dict is that run's InvalidResult.
    assert ev["errors_by_type"]["InvalidResult"] > 0
    assert ev["errors_by_type"]["ZeroDivisionError"] > 0
    example = next(e for e in ev["error_examples"] if e["type"] == "ZeroDivisionError")
    assert example["line"] == 3 and example["symbol"] in SYMBOLS and example["date"] >= "2017-01-03"
    with_field = run_evaluation(client, {**BODY, "script": code, "field": "a"})
    assert "InvalidResult" not in with_field["evaluation"]["errors_by_type"]
    missing_key = run_evaluation(client, {**BODY, "script": code, "field": "b"})
    assert missing_key["evaluation"]["errors_by_type"]["InvalidResult"] > 0


def test_the_figures_do_not_change_when_no_chunk_stored_some_forward_returns(
    client, settings, monkeypatch
):
    """The chunks store their symbols' forward returns; the job's end works out those of any
    symbol whose chunk never ran (a job that timed out), and of every symbol for a job
    planned without its calendar, from the closes. Either way the figures are the same.
    (The job's end drops the stored ones once the figures hold them: kept here to look.)"""
    rt = Runtime(settings)
    body = {**BODY, "horizons": [1, 5, 21], "neutralize": "sector"}
    dropped = run_evaluation(client, body)
    assert not rt.redis.exists(job_part(dropped["job_id"], FORWARD_PART))
    monkeypatch.setattr(PanelStore, "drop_forward", lambda self, job_id: None)
    job = run_evaluation(client, {**body, "script": REVERSAL + "\n# kept"})
    assert job["evaluation"] == dropped["evaluation"]
    store = rt.store()
    spec = store.spec(job["job_id"])
    panel = PanelStore(store.r, ttl_seconds=store.ttl)
    assert store.r.hlen(job_part(spec.job_id, FORWARD_PART)) == len(SYMBOLS)
    whole, rows = figures_of(panel, spec, rt=rt)
    assert orjson.loads(orjson.dumps(whole)) == job["evaluation"]
    assert whole["horizons"]["21"]["ic_dates"] > 0

    store.r.hdel(job_part(spec.job_id, FORWARD_PART), "AAPL", "BHF", "CAT")
    assert figures_of(panel, spec, rt=rt) == (whole, rows)
    store.r.hset(job_part(spec.job_id, FORWARD_PART), "MSFT", b"not a row of this job")
    assert figures_of(panel, spec, rt=rt) == (whole, rows)
    unplanned = {k: v for k, v in spec.evaluation.items() if k != "calendar"}
    assert figures_of(panel, dataclasses.replace(spec, evaluation=unplanned), rt=rt) == (
        whole,
        rows,
    )


def test_another_script_over_the_same_history_reads_no_bars_again(client, monkeypatch):
    """The worker process holds the symbols' histories it read (workers/bars_cache.py, as for
    /execute): a second script over the same symbols and dates reads none of them from the
    database, and its values are those of the bars as read (the cache hands them packed)."""

    worker_runtime().bars_cache.clear()
    first = run_evaluation(client, {**BODY, "script": REVERSAL + "\n# first"})
    loads: list[list[str]] = []
    load = db.market_data.load_chunk

    def counting(symbols, **kwargs):
        loads.append(list(symbols))
        return load(symbols, **kwargs)

    monkeypatch.setattr("workers.bars_cache.load_chunk", counting)
    again = run_evaluation(client, {**BODY, "script": REVERSAL + "\n# again"})
    assert again["cache_hits"] == 0  # other code: nothing from the result cache
    assert loads and all(chunk == [] for chunk in loads)
    assert again["evaluation"] == first["evaluation"]
    assert panel_rows(client, again["job_id"]) == panel_rows(client, first["job_id"])


def test_a_repeated_evaluation_is_served_by_the_result_cache(client):
    first = run_evaluation(client, {**BODY, "every": 10})
    again = run_evaluation(client, {**BODY, "every": 10, "horizons": [21], "quantiles": 4})
    ran = first["evaluation"]["runs"] - first["evaluation"]["errors_by_type"].get("NoData", 0)
    assert again["cache_hits"] == ran > 0
    assert again["evaluation"]["horizons"]["21"]["ic_dates"] > 0


def test_sector_neutral_values_sum_to_zero_within_each_sector(client):
    job = run_evaluation(client, {**BODY, "neutralize": "sector", "horizons": [5]})
    assert job["status"] == "completed"
    assert job["evaluation"]["horizons"]["5"]["ic_dates"] > 0


NESTED_TOO_DEEP: dict = {}
for _ in range(40):
    NESTED_TOO_DEEP = {"a": NESTED_TOO_DEEP}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "2017-07-01", "end": "2017-06-30"}, "start"),
        ({"start": "2019-01-01", "end": "2019-06-30"}, "start"),
        ({"neutralize": "industry"}, "neutralize"),
        ({"symbols": ["AAPL"]}, "symbols"),
        ({"symbols": ["AAPL", "aapl"]}, "symbols"),
        (
            {
                "symbols": [f"X{i}" for i in range(4999)] + ["AAPL"],
                "start": "2013-01-01",
                "end": "2018-12-31",
                "every": 1,
            },
            "symbols",
        ),
        ({"horizons": []}, "horizons"),
        ({"horizons": [1, 2, 3, 4, 5, 6]}, "horizons"),
        ({"horizons": [253]}, "horizons"),
        ({"quantiles": 1}, "quantiles"),
        ({"quantiles": 11}, "quantiles"),
        ({"every": 64}, "every"),
        ({"start": "not a date"}, "start"),
        ({"params": NESTED_TOO_DEEP}, "params"),  # bounded as for /execute (API.md)
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, change, field):
    response = evaluate(client, {**BODY, **change}, wait=0)
    assert response.status_code == 400, response.get_json()
    err = response.get_json()["error"]
    assert err["type"] == "ValidationError"
    assert any(key == field or key.startswith(f"{field}.") for key in err["details"]), err


def test_more_than_1260_rebalance_dates_is_refused():
    calendar = [
        f"20{y:02d}-{m:02d}-{d:02d}"
        for y in range(10, 16)
        for m in range(1, 13)
        for d in range(1, 29)
    ]
    from datetime import date

    def plan(every: int) -> EvaluationPlan:
        span = {"start": date(2010, 1, 1), "end": date(2015, 12, 31)}
        return plan_dates(calendar, **span, every=every, lookback=10, horizons=[1], symbols=2)

    with pytest.raises(PlanError) as refused:
        plan(every=1)
    assert refused.value.field == "every"
    assert len(plan(every=2).dates) == 1008


def test_an_evaluation_is_listed_audited_and_exported_only_as_a_panel(client, settings):
    job = run_evaluation(client, {**BODY, "every": 20})
    listed = client.get(f"{BASE}/jobs").get_json()["items"]
    assert any(j["job_id"] == job["job_id"] and j["kind"] == "evaluation" for j in listed)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            row = session.scalar(select(Execution).where(Execution.job_id == job["job_id"]))
            assert (row.kind, row.status) == ("evaluation", "completed")
    finally:
        engine.dispose()
    wrong = client.get(f"{BASE}/jobs/{job['job_id']}/results.csv")
    assert wrong.status_code == 409 and wrong.get_json()["error"]["type"] == "Conflict"
    assert client.get(f"{BASE}/jobs/nope/panel.csv").status_code == 404


def test_an_evaluation_can_be_cancelled(client):
    slow = "n = 0\nfor i in range(200000):\n    n += i\nresult = close[-1]"
    response = evaluate(client, {**BODY, "script": slow, "every": 1}, wait=0)
    job_id = response.get_json()["job_id"]
    deadline = time.monotonic() + 30
    while client.get(f"{BASE}/jobs/{job_id}").get_json()["progress"]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = client.delete(f"{BASE}/jobs/{job_id}").get_json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["progress"]["done"] < cancelled["progress"]["total"]
    assert client.get(f"{BASE}/jobs/{job_id}/panel.csv").status_code in (200, 409)


def test_results_csv_quotes_commas_in_names_and_messages(client):
    code = "result = {'a,b': close[-1], 'c': 1.5} if symbol != 'MSFT' else 1 / 0"
    job = run_job(client, {"script": code, "symbols": ["AAPL", "MSFT", "X,Y"]})
    response = client.get(f"{BASE}/jobs/{job['job_id']}/results.csv")
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["symbol", "a,b", "c", "error_type", "error_message"]
    assert rows[1] == ["AAPL", repr(closes("AAPL")[-1][1]), "1.5", "", ""]
    assert rows[2][0] == "MSFT" and rows[2][3] == "ZeroDivisionError"
    assert rows[3] == ["X,Y", "", "", "UnknownSymbol", "no price data for X,Y"]
    panel = client.get(f"{BASE}/jobs/{job['job_id']}/panel.csv")
    assert panel.status_code == 409


def test_the_panel_csv_quotes_symbols_with_commas(client):
    job = run_evaluation(client, {**BODY, "symbols": ["AAPL", "A,B", "MSFT"], "every": 20})
    rows = panel_rows(client, job["job_id"])
    assert {r["symbol"] for r in rows} == {"AAPL", "A,B", "MSFT"}
    assert all(r["value"] == "" for r in rows if r["symbol"] == "A,B")
    assert all(not math.isnan(float(r["value"])) for r in rows if r["symbol"] == "AAPL")
