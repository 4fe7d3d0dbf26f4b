"""POST /execute and GET /jobs/{id} through the real app, Redis, database and a Celery worker."""

from __future__ import annotations

import pytest

from tests.api.helpers import BASE, closes, run_job, submit, wait_done

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_inline_script_runs_per_symbol_with_real_data(client):
    job = run_job(
        client,
        {
            "script": "result = close[-1] / close[-21] - 1",
            "symbols": ["aapl", "MSFT", "NOPE", "AAPL"],
        },
    )
    assert job["status"] == "completed"
    assert list(job["results"]) == ["AAPL", "MSFT", "NOPE"]  # upper-cased, deduplicated, ordered
    aapl = [c for _, c in closes("AAPL")]
    assert job["results"]["AAPL"] == pytest.approx(aapl[-1] / aapl[-21] - 1, rel=1e-12)
    assert job["results"]["NOPE"] is None
    assert job["errors"] == {"NOPE": {"type": "UnknownSymbol", "message": "no price data for NOPE"}}
    assert job["progress"] == {"done": 3, "total": 3}
    assert job["error"] is None
    assert job["finished_at"].endswith("Z")
    assert isinstance(job["duration_ms"], int)


def test_submit_answers_202_with_location_then_the_job_completes(client):
    response = submit(client, {"script": "result = len(close)", "symbols": ["AAPL"]})
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"{BASE}/jobs/{job['job_id']}"
    assert job["status"] in ("queued", "running", "completed")
    done = wait_done(client, job["job_id"])
    assert done["results"] == {"AAPL": 252}


def test_wait_returns_the_finished_job_with_200(client):
    response = submit(client, {"script": "result = 1.5", "symbols": ["AAPL", "MSFT"], "wait": 20})
    assert response.status_code == 200
    assert response.get_json()["results"] == {"AAPL": 1.5, "MSFT": 1.5}


def test_lookback_and_as_of_select_the_window(client):
    job = run_job(
        client,
        {
            "script": "result = {'n': len(dates), 'last': close[-1]}",
            "symbols": ["AAPL"],
            "lookback": 10,
            "as_of": "2017-06-30",
        },
    )
    series = [(d, c) for d, c in closes("AAPL") if d <= "2017-06-30"]
    assert job["results"]["AAPL"] == {"n": 10, "last": series[-1][1]}


def test_script_sees_the_contract_names(client):
    code = "\n".join(
        [
            "assert symbol == 'MSFT'",
            "assert len(dates) == len(open) == len(high) == len(low) == len(close) == len(volume)",
            "assert dates[0] < dates[-1] and isinstance(volume[-1], int)",
            "assert isinstance(close, tuple) and isinstance(dates[0], str)",
            "assert info['sector'] == 'Information Technology'",
            "assert params == {'w': 3}",
            "result = {'sma': sma(close, params['w'])[-1], 'sqrt': math.sqrt(4),",
            "          'mean': statistics.mean([1, 2, 3])}",
        ]
    )
    job = run_job(client, {"script": code, "symbols": ["MSFT"], "params": {"w": 3}})
    assert job["errors"] == {}
    last3 = [c for _, c in closes("MSFT")][-3:]
    assert job["results"]["MSFT"] == {"sma": pytest.approx(sum(last3) / 3), "sqrt": 2.0, "mean": 2}


def test_runtime_error_carries_the_scripts_line_and_stdout(client):
    code = "x = 1\nprint('checking', symbol)\n\ny = close[-1] / 0\nresult = y"
    job = run_job(client, {"script": code, "symbols": ["AAPL"]})
    assert job["status"] == "completed"
    assert job["results"] == {"AAPL": None}
    assert job["errors"]["AAPL"]["type"] == "ZeroDivisionError"
    assert job["errors"]["AAPL"]["line"] == 4
    assert job["stdout"] == {"AAPL": "checking AAPL\n"}


def test_invalid_results_are_per_symbol_errors(client):
    job = run_job(
        client,
        {
            "script": "result = float('nan') if symbol == 'AAPL' else 'text'",
            "symbols": ["AAPL", "MSFT"],
        },
    )
    assert job["results"] == {"AAPL": None, "MSFT": None}
    assert {e["type"] for e in job["errors"].values()} == {"InvalidResult"}


def test_missing_result_is_invalid(client):
    job = run_job(client, {"script": "x = 1", "symbols": ["AAPL"]})
    assert job["errors"]["AAPL"]["type"] == "InvalidResult"


def test_result_none_is_a_null_without_error(client):
    job = run_job(client, {"script": "result = None", "symbols": ["AAPL"]})
    assert job["results"] == {"AAPL": None}
    assert job["errors"] == {}


def test_known_symbol_without_bars_in_window_is_nodata(client):
    # DWDP's history starts on 2017-09-01: nothing before it.
    job = run_job(client, {"script": "result = 1", "symbols": ["DWDP"], "as_of": "2016-01-04"})
    assert job["errors"]["DWDP"]["type"] == "NoData"


def test_params_are_fresh_per_symbol(client):
    code = "params['seen'] = params.get('seen', 0) + 1\nresult = params['seen']"
    job = run_job(client, {"script": code, "symbols": ["AAPL", "MSFT", "AMZN"]})
    assert job["results"] == {"AAPL": 1, "MSFT": 1, "AMZN": 1}


def test_a_loop_over_all_bars_works(client):
    code = (
        "total = 0\nfor i in range(len(close)):\n    total += close[i]\nresult = total / len(close)"
    )
    job = run_job(client, {"script": code, "symbols": ["AAPL"], "lookback": 2520})
    series = [c for _, c in closes("AAPL")]
    assert job["results"]["AAPL"] == pytest.approx(sum(series) / len(series))


def test_jobs_list_shows_recent_jobs_newest_first_without_results(client):
    first = run_job(client, {"script": "result = 1", "symbols": ["AAPL"]})
    second = run_job(client, {"script": "result = 2", "symbols": ["AAPL"]})
    items = client.get(f"{BASE}/jobs?limit=5").get_json()["items"]
    assert [j["job_id"] for j in items[:2]] == [second["job_id"], first["job_id"]]
    assert "results" not in items[0] and "stdout" not in items[0]


def test_unknown_job_is_404(client):
    response = client.get(f"{BASE}/jobs/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "NotFound"
