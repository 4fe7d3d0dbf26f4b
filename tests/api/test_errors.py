"""Every error of API.md's table that applies, in the one envelope; nothing is queued."""

from __future__ import annotations

import json

import pytest
from flask import abort

from api.schemas import PayloadTooLargeResponse
from tests.api.helpers import BASE, submit


def envelope(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == kind
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def no_jobs_queued(redis_client) -> None:
    assert redis_client.keys("calc:job:*") == []
    assert redis_client.llen("celery") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"script": "result = 1", "symbols": []}, "symbols"),
        ({"script": "result = 1", "symbols": ["A"] * 5001}, "symbols"),
        ({"script": "result = 1"}, "symbols"),
        ({"script": "result = 1", "symbols": "AAPL"}, "symbols"),
        ({"script": "result = 1", "symbols": [""]}, "symbols.0"),
        ({"script": "result = 1", "symbols": ["A B"]}, "symbols.0"),
        ({"script": "result = 1", "symbols": [7]}, "symbols.0"),
        ({"script": "result = 1", "symbols": ["AAPL"], "lookback": 0}, "lookback"),
        ({"script": "result = 1", "symbols": ["AAPL"], "lookback": 2521}, "lookback"),
        ({"script": "result = 1", "symbols": ["AAPL"], "wait": 31}, "wait"),
        ({"script": "result = 1", "symbols": ["AAPL"], "as_of": "2018-13-01"}, "as_of"),
        ({"script": "result = 1", "symbols": ["AAPL"], "params": [1]}, "params"),
        ({"script": "result = 1", "symbols": ["AAPL"], "colour": "red"}, "colour"),
        ({"symbols": ["AAPL"]}, "body"),
        ({"script": "result = 1", "script_id": 1, "symbols": ["AAPL"]}, "body"),
        ({"script": "", "symbols": ["AAPL"]}, "script"),
    ],
)
def test_malformed_execute_bodies_are_validation_errors(client, redis_client, body, field):
    err = envelope(submit(client, body), 400, "ValidationError")
    assert any(key == field or key.startswith(field) for key in err["details"]) or (
        field == "body"
    ), err
    no_jobs_queued(redis_client)


def test_symbols_limit_names_the_field_as_api_md_shows(client):
    err = envelope(submit(client, {"script": "result = 1", "symbols": []}), 400, "ValidationError")
    assert err["details"] == {"symbols": "must hold 1 to 5000 items"}
    assert err["message"] == "symbols: must hold 1 to 5000 items"


def test_syntax_error_at_submit_has_line_and_column(client, redis_client):
    err = envelope(
        submit(client, {"script": "x = 1\ny = (2 +\n", "symbols": ["AAPL"]}), 400, "SyntaxError"
    )
    assert err["details"]["line"] >= 2 and err["details"]["column"] >= 1
    no_jobs_queued(redis_client)


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("import os", 1),
        ("x = 1\nfrom os import path", 2),
        ("x = 1\n\nimport importlib.util as u", 3),
        ("result = __import__('os')", 1),
        ("result = close.__class__", 1),
        ("exec('1')", 1),
        ("eval('1')", 1),
        ("_x = 1", 1),
        ("class A:\n    pass", 1),
        ("def f():\n    global y\n", 2),
    ],
)
def test_policy_breaks_are_security_errors_at_submit(client, redis_client, code, line):
    err = envelope(submit(client, {"script": code, "symbols": ["AAPL"]}), 400, "SecurityError")
    assert err["details"].get("line") == line
    no_jobs_queued(redis_client)


BIG_CODE = "x = 1\n" * (64 * 1024 // 6 + 10)
BIG_BODY = b'{"code": "' + b"x" * (2 * 1024 * 1024) + b'"}'
EVALUATE = {"symbols": ["AAPL", "MSFT"], "start": "2017-01-03", "end": "2017-06-30"}


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("POST /execute", {"script": BIG_CODE, "symbols": ["AAPL"]}, "code"),
        ("POST /evaluate", {"script": BIG_CODE, **EVALUATE}, "code"),
        ("POST /validate", {"code": BIG_CODE}, "code"),
        ("POST /scripts", {"name": "big", "code": BIG_CODE}, "code"),
        ("PUT /scripts/1", {"name": "big", "code": BIG_CODE}, "code"),
        ("POST /execute", BIG_BODY, "body"),  # Werkzeug's 413 (MAX_CONTENT_LENGTH)
        ("POST /evaluate", BIG_BODY, "body"),
        ("POST /scripts", BIG_BODY, "body"),
        ("PUT /scripts/1", BIG_BODY, "body"),
    ],
)
def test_every_413_has_the_one_details_shape(client, redis_client, route, body, field):
    """Whichever layer refuses (Werkzeug reading the body, or our check of the code), the
    details name the one field and its limit (README, The API beyond API.md)."""
    method, path = route.split()
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = client.open(
        f"{BASE}{path}", method=method, data=data, content_type="application/json"
    )
    err = envelope(response, 413, "PayloadTooLarge")
    limit = {"code": 65536, "body": 1048576}[field]
    assert err["details"] == {field: f"at most {limit} bytes"}
    PayloadTooLargeResponse.model_validate(response.get_json())  # as the OpenAPI document says
    no_jobs_queued(redis_client)


def test_a_bug_is_a_500_in_the_envelope_without_a_traceback(settings, make_app, caplog):
    """Not in API.md's table (README): an error of ours is ``InternalError``, logged whole,
    and the answer says nothing of it; Werkzeug's own 500 is the same."""
    app = make_app(settings)

    def broken():
        raise RuntimeError(f"secret detail in {__file__}")

    app.add_url_rule("/broken", "broken", broken)
    app.add_url_rule("/aborted", "aborted", lambda: abort(500))
    client = app.test_client()
    for path in ("/broken", "/aborted"):
        response = client.get(path)
        err = envelope(response, 500, "InternalError")
        text = response.get_data(as_text=True)
        assert "secret" not in text and "Traceback" not in text and __file__ not in text
        assert err["details"] == {}
    assert "secret detail" in caplog.text  # the log has it


def test_the_page_files_conditional_answers_are_enveloped_too(client):
    """What Werkzeug answers itself for a static file (no handler sees it) is enveloped, as
    ``HTTPError``: the two statuses API.md's table has no type for (README)."""
    for headers, status in (({"Range": "bytes=999999-"}, 416), ({"If-Match": '"x"'}, 412)):
        response = client.get("/static/page.css", headers=headers)
        envelope(response, status, "HTTPError")
        response.close()


def test_non_json_body_is_415(client):
    response = client.post(f"{BASE}/execute", data="script=1", content_type="text/plain")
    envelope(response, 415, "UnsupportedMediaType")
    response = client.post(f"{BASE}/execute", data="{}")
    envelope(response, 415, "UnsupportedMediaType")


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"script": "result = 1", "symbols": ["AAPL"], "wait": NaN}',
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"script": "result = 1", "symbols": ["AAPL"], "params": {"a": "\\ud800"}}',
        b'{"script": "x\\ud800", "symbols": ["AAPL"]}',
        # The same lone surrogate as UTF-8 bytes (json.loads reads them with surrogatepass)
        # and as an escape in a UTF-16 body.
        b'{"script": "result = 1", "symbols": ["AAPL"], "params": {"a": "\xed\xa0\x80"}}',
        '{"script": "result = 1", "symbols": ["AAPL"], "params": {"a": "\\ud800"}}'.encode(
            "utf-16-le"
        ),
        b"",
    ],
)
def test_bodies_that_are_not_usable_json_are_400(client, raw):
    response = client.post(f"{BASE}/execute", data=raw, content_type="application/json")
    envelope(response, 400, "ValidationError")


def test_nul_in_code_is_a_syntax_error_not_a_crash(client):
    envelope(submit(client, {"script": "x = 1\x00", "symbols": ["AAPL"]}), 400, "SyntaxError")


def test_deeply_nested_code_is_400(client):
    code = "result = " + "(" * 5000 + "1" + ")" * 5000
    err = envelope(submit(client, {"script": code, "symbols": ["AAPL"]}), 400, "SyntaxError")
    assert "nest" in err["message"] or "parenthes" in err["message"]


def test_unknown_route_and_wrong_method_are_enveloped(client):
    envelope(client.get(f"{BASE}/nothing-here"), 404, "NotFound")
    envelope(client.get("/no-such-page"), 404, "NotFound")  # (/ is the page)
    response = client.put(f"{BASE}/execute", json={})
    envelope(response, 405, "MethodNotAllowed")
    assert "POST" in response.headers["Allow"]


def test_saved_script_that_does_not_exist_is_404(client):
    envelope(submit(client, {"script_id": 999999, "symbols": ["AAPL"]}), 404, "NotFound")


def test_query_parameters_are_validated(client):
    envelope(client.get(f"{BASE}/jobs?limit=abc"), 400, "ValidationError")
    envelope(client.get(f"{BASE}/jobs?limit=0"), 400, "ValidationError")


def test_validate_route(client):
    assert client.post(f"{BASE}/validate", json={"code": "result = 1"}).get_json() == {
        "valid": True
    }
    envelope(client.post(f"{BASE}/validate", json={"code": "import os"}), 400, "SecurityError")
    envelope(client.post(f"{BASE}/validate", json={"code": "1 +"}), 400, "SyntaxError")
    envelope(client.post(f"{BASE}/validate", json={}), 400, "ValidationError")
