"""Reference series on POST /execute, the job's errors_by_type, warnings and provenance,
through the real app, Redis, database and a Celery worker on the shipped sample."""

from __future__ import annotations

import pytest

from tests.api.helpers import BASE, closes, run_job, submit

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_reference_symbol_is_aligned_with_the_scripts_dates(client):
    code = "result = {'n': len(ref['MSFT']['close']), 'last': ref['MSFT']['close'][-1]}"
    job = run_job(client, {"script": code, "symbols": ["AAPL"], "reference": ["msft"]})
    assert job["errors"] == {}
    msft = [c for _, c in closes("MSFT")]
    assert job["results"]["AAPL"] == {"n": 252, "last": pytest.approx(msft[-1])}
    assert job["provenance"]["reference"] == ["MSFT"]


def test_market_and_sector_are_given_to_the_script(client):
    code = "\n".join(
        [
            "m, s = ref['@market']['close'], ref['@sector']['close']",
            "result = {'m': m[-1] / m[-21] - 1, 's': s[-1] / s[-21] - 1}",
        ]
    )
    job = run_job(
        client, {"script": code, "symbols": ["AAPL", "XOM"], "reference": ["@market", "@sector"]}
    )
    assert job["errors"] == {}
    aapl, xom = job["results"]["AAPL"], job["results"]["XOM"]
    assert aapl["m"] == pytest.approx(xom["m"])  # one market for all
    assert aapl["s"] != pytest.approx(xom["s"])  # each its own sector


@pytest.mark.parametrize(
    ("reference", "needle"),
    [
        (["NOPE"], "NOPE"),
        (["@world"], "@world"),
        ([f"S{i}" for i in range(11)], "at most 10"),
        ("AAPL", "list"),
    ],
)
def test_bad_reference_is_a_400_naming_reference(client, reference, needle):
    response = submit(client, {"script": "result = 1", "symbols": ["AAPL"], "reference": reference})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["type"] == "ValidationError"
    assert any(k.startswith("reference") for k in error["details"]), error
    assert needle in error["message"] or needle in str(error["details"])


def test_errors_by_type_and_warnings_are_counted_per_job(client):
    code = "\n".join(
        [
            "if symbol == 'MSFT':",
            "    result = 1 / 0",
            "result = sma(close, 300)[-1]",
        ]
    )
    job = run_job(client, {"script": code, "symbols": ["AAPL", "MSFT", "XOM", "NOPE"]})
    assert job["errors_by_type"] == {"UnknownSymbol": 1, "ZeroDivisionError": 1}
    (warning,) = job["warnings"]
    assert warning["count"] == 2  # AAPL and XOM
    assert "sma" in warning["message"] and "lookback" in warning["message"]
    # A second, cached run counts the same.
    again = run_job(client, {"script": code, "symbols": ["AAPL", "MSFT", "XOM", "NOPE"]})
    assert again["cache_hits"] >= 2
    assert again["errors_by_type"] == job["errors_by_type"]
    assert again["warnings"] == job["warnings"]


def test_provenance_says_a_saturday_ran_on_the_friday(client):
    job = run_job(
        client,
        {
            "script": "result = close[-1]",
            "symbols": ["AAPL", "MSFT"],
            "params": {"k": 1},
            "lookback": 20,
            "as_of": "2017-06-03",  # a Saturday
        },
    )
    p = job["provenance"]
    assert p["as_of_requested"] == "2017-06-03"
    assert p["as_of"] == "2017-06-02"
    assert p["params"] == {"k": 1} and p["lookback"] == 20 and p["reference"] == []
    assert p["symbols"] == 2 and len(p["code_sha256"]) == 64
    assert isinstance(p["data_version"], int)
    friday = [c for d, c in closes("AAPL") if d <= "2017-06-02"][-1]
    assert job["results"]["AAPL"] == pytest.approx(friday)
    newest = run_job(client, {"script": "result = 1", "symbols": ["AAPL"]})["provenance"]
    assert newest["as_of_requested"] is None
    assert newest["as_of"] == closes("AAPL")[-1][0]


def test_job_list_items_carry_the_tallies(client):
    run_job(client, {"script": "result = 1 / 0", "symbols": ["AAPL"]})
    items = client.get(f"{BASE}/jobs").get_json()["items"]
    assert items[0]["errors_by_type"] == {"ZeroDivisionError": 1}


def test_job_list_pages_and_filters(client):
    ids = [
        run_job(client, {"script": f"result = {i}", "symbols": ["AAPL"]})["job_id"]
        for i in range(3)
    ]
    failed = run_job(client, {"script": "result = 1", "symbols": ["AAPL"], "timeout": 0.001})
    body = client.get(f"{BASE}/jobs?limit=2&offset=1").get_json()
    assert body["total"] == 4 and body["limit"] == 2 and body["offset"] == 1
    newest_first = [failed["job_id"], *reversed(ids)]
    assert [j["job_id"] for j in body["items"]] == newest_first[1:3]
    done = client.get(f"{BASE}/jobs?status=completed").get_json()
    assert {j["job_id"] for j in done["items"]} <= set(ids)
    assert all(j["status"] == "completed" for j in done["items"])
    none = client.get(f"{BASE}/jobs?script_id=99").get_json()
    assert none == {"items": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize("query", ["status=done", "script_id=0", "offset=-1", "limit=0", "x=1"])
def test_job_list_refuses_bad_query_values(client, query):
    response = client.get(f"{BASE}/jobs?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "ValidationError"


def test_an_evaluation_sees_its_reference_point_in_time(client):
    from tests.api.test_evaluate import panel_rows, run_evaluation

    code = "\n".join(
        [
            "m = ref['@market']['close']",
            "assert len(m) == len(close) and m[-1] is not None",
            "if symbol == 'XOM':",
            "    result = sma(close, 300)[-1]",
            "else:",
            "    result = m[-1]",
        ]
    )
    job = run_evaluation(
        client,
        {
            "script": code,
            "symbols": ["AAPL", "MSFT", "XOM"],
            "reference": ["@market"],
            "start": "2017-06-03",
            "end": "2017-06-30",
            "every": 5,
            "horizons": [1],
        },
    )
    assert job["status"] == "completed", job
    assert job["errors_by_type"] == {}
    (warning,) = job["warnings"]
    assert warning["count"] == job["evaluation"]["dates"]  # XOM at every date
    p = job["provenance"]
    assert p["reference"] == ["@market"] and p["as_of_requested"] == "2017-06-30"
    rows = panel_rows(client, job["job_id"])
    assert p["as_of"] == max(r["date"] for r in rows)
    # A run at date d sees the market's level at d: the same for every symbol, moving with d.
    by_date: dict[str, set[str]] = {}
    for r in rows:
        if r["symbol"] != "XOM":
            by_date.setdefault(r["date"], set()).add(r["value"])
    assert all(len(values) == 1 for values in by_date.values())
    assert len({next(iter(v)) for v in by_date.values()}) == len(by_date)
