"""Operations: /health, /metrics, /openapi.json, JSON logs, and Redis or the database down."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time

import pytest

from db.tokens import hash_token
from settings import Settings
from tests.api.helpers import BASE, run_job

ROUTES_OF_API_MD = {
    ("post", "/scripts"),
    ("get", "/scripts"),
    ("get", "/scripts/{script_id}"),
    ("put", "/scripts/{script_id}"),
    ("delete", "/scripts/{script_id}"),
    ("post", "/validate"),
    ("post", "/execute"),
    ("post", "/evaluate"),
    ("get", "/jobs/{job_id}/results.csv"),
    ("get", "/jobs/{job_id}/panel.csv"),
    ("get", "/jobs/{job_id}"),
    ("delete", "/jobs/{job_id}"),
    ("get", "/jobs"),
    ("get", "/scripts/{script_id}/results"),
    ("get", "/health"),
    ("get", "/openapi.json"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_redis():
    """A Redis server of this test's own, so the test can stop and restart it."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (installed by .ci/run)"
    port = free_port()

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return proc
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    state = {"proc": start()}

    def stop() -> None:
        state["proc"].terminate()
        state["proc"].wait(timeout=10)

    def restart() -> None:
        state["proc"] = start()

    yield f"redis://127.0.0.1:{port}/0", stop, restart
    if state["proc"].poll() is None:
        stop()


@pytest.mark.usefixtures("celery_worker")
def test_health_ok_with_database_redis_and_a_worker(client):
    response = client.get(f"{BASE}/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["workers"] >= 1


def test_health_is_503_without_workers(client):
    response = client.get(f"{BASE}/health")
    assert response.status_code == 503
    assert response.get_json()["checks"]["workers"] == 0


def test_redis_down_is_503_fast_and_recovers(sample_market_data, own_redis, make_app):
    url, stop, restart = own_redis
    client = make_app(Settings(database_url=sample_market_data, redis_url=url)).test_client()
    assert client.get(f"{BASE}/jobs").status_code == 200
    stop()
    for method, path, body in [
        ("get", "/jobs", None),
        ("get", "/jobs/00000000-0000-4000-8000-000000000000", None),
        ("post", "/execute", {"script": "result = 1", "symbols": ["AAPL"]}),
        ("get", "/health", None),
    ]:
        started = time.monotonic()
        response = getattr(client, method)(f"{BASE}{path}", json=body)
        assert time.monotonic() - started < 2.5, path
        assert response.status_code == 503, (path, response.get_json())
        if path == "/health":
            assert response.get_json()["checks"]["redis"] == "unavailable"
        else:
            assert response.get_json()["error"]["type"] == "ServiceUnavailable"
    restart()
    end = time.monotonic() + 10
    while client.get(f"{BASE}/jobs").status_code != 200:
        assert time.monotonic() < end, "did not recover after Redis came back"
        time.sleep(0.2)


def test_database_down_is_503_in_the_envelope(redis_url, make_app):
    dead = "postgresql://postgres@127.0.0.1:1/none"
    client = make_app(Settings(database_url=dead, redis_url=redis_url)).test_client()
    for method, path, body in [
        ("get", "/scripts", None),
        ("post", "/scripts", {"name": "x", "code": "result = 1"}),
        ("post", "/execute", {"script_id": 1, "symbols": ["AAPL"]}),
        ("get", "/scripts/1/results", None),
    ]:
        started = time.monotonic()
        response = getattr(client, method)(f"{BASE}{path}", json=body)
        assert time.monotonic() - started < 5
        assert response.status_code == 503, (path, response.get_data(as_text=True))
        assert response.get_json()["error"]["type"] == "ServiceUnavailable"
    health = client.get(f"{BASE}/health")
    assert health.status_code == 503
    assert health.get_json()["checks"]["database"] == "unavailable"


@pytest.mark.parametrize("database", ["a server that is not there", "a database without tables"])
def test_a_token_lookup_the_database_fails_is_503_and_logs_no_token(
    database, redis_url, make_app, tmp_path, caplog
):
    """Every authenticated request looks its token up first (``db.tokens.find_token``): a
    failing database there is a 503 like anywhere else, not a 500, and names no token."""
    url = (
        "postgresql://postgres@127.0.0.1:1/none"
        if database == "a server that is not there"
        else f"sqlite:///{tmp_path / 'empty.sqlite3'}"  # the query fails in the driver
    )
    settings = Settings(database_url=url, redis_url=redis_url, auth="required")
    client = make_app(settings).test_client()
    token = "a-token-" + "x" * 40
    with caplog.at_level(logging.DEBUG):
        response = client.get(f"{BASE}/jobs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"]["type"] == "ServiceUnavailable"
    for secret in (token, hash_token(token)):
        assert secret not in caplog.text
        assert secret not in response.get_data(as_text=True)


@pytest.mark.usefixtures("celery_worker")
def test_metrics_count_a_finished_job(client):
    def value(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = client.get("/metrics").get_data(as_text=True)
    run_job(client, {"script": "result = 1 / (symbol == 'AAPL')", "symbols": ["AAPL", "MSFT"]})
    response = client.get("/metrics")
    assert response.status_code == 200
    after = response.get_data(as_text=True)
    completed = 'calc_jobs_finished_total{status="completed"}'
    assert value(after, completed) == value(before, completed) + 1
    errors = 'calc_symbol_errors_total{type="ZeroDivisionError"}'
    assert value(after, errors) == value(before, errors) + 1
    assert value(after, "calc_symbols_processed_total") >= 2
    assert "calc_job_duration_seconds_bucket" in after and "calc_queue_depth" in after


def test_openapi_describes_every_route(client):
    doc = client.get(f"{BASE}/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    described = {
        (method, path.removeprefix(BASE)) for path, ops in doc["paths"].items() for method in ops
    }
    assert described >= ROUTES_OF_API_MD
    execute = doc["paths"][f"{BASE}/execute"]["post"]
    schema = doc["components"]["schemas"][
        execute["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert schema["properties"]["symbols"]["maxItems"] == 5000
    assert schema["properties"]["lookback"]["maximum"] == 2520


@pytest.mark.usefixtures("celery_worker")
def test_log_lines_about_a_job_are_json_with_its_id(client, caplog):
    from pythonjsonlogger.json import JsonFormatter

    caplog.set_level(logging.INFO)
    job = run_job(
        client,
        {
            "script": "result = 1  # secret-code-marker",
            "symbols": ["AAPL"],
            "params": {"p": "secret-param-marker"},
        },
    )
    about_job = [r for r in caplog.records if getattr(r, "job_id", None) == job["job_id"]]
    assert about_job, "no log record carries the job id"
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for record in about_job:
        line = json.loads(formatter.format(record))
        assert line["job_id"] == job["job_id"]
        assert "script_id" in line and "user" in line
    text = caplog.text + "".join(formatter.format(r) for r in caplog.records)
    assert "secret-code-marker" not in text and "secret-param-marker" not in text
