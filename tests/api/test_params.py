"""``params`` are bounded at submit: nesting depth and finite numbers, a 400 naming ``params``
(a job the worker could not even read must never be accepted)."""

from __future__ import annotations

import json

import pytest

from api.schemas import MAX_PARAMS_DEPTH
from tests.api.helpers import BASE


def nested(depth: int) -> str:
    """A ``params`` object ``depth`` levels deep (the object itself is level 1)."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def post(client, path: str, raw_body: str):
    return client.post(f"{BASE}{path}", data=raw_body, content_type="application/json")


def execute_body(params_json: str) -> str:
    return '{"script": "result = 1", "symbols": ["AAPL"], "params": ' + params_json + "}"


@pytest.mark.parametrize("depth", [MAX_PARAMS_DEPTH + 1, 100, 950, 984])
def test_params_nested_too_deeply_are_a_400_naming_params(client, redis_client, depth: int):
    answer = post(client, "/execute", execute_body(nested(depth)))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["type"] == "ValidationError"
    assert "params" in error["details"] and "nested deeper than 32" in error["details"]["params"]
    assert not redis_client.keys("calc:job:*")  # nothing queued


def test_params_as_deep_as_allowed_are_accepted(client):
    answer = post(client, "/execute", execute_body(nested(MAX_PARAMS_DEPTH)))
    assert answer.status_code == 202, answer.get_data(as_text=True)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "[1, 2, 1e999]", '{"x": {"y": 1E400}}'])
def test_a_number_that_overflows_to_infinity_is_a_400_naming_params(client, number: str):
    answer = post(client, "/execute", execute_body('{"w": ' + number + "}"))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    details = answer.get_json()["error"]["details"]
    assert "finite" in details["params"]


def test_saved_schedules_params_are_bounded_too(client):
    schedule = '{"cron": "0 1 * * *", "symbols": ["AAPL"], "params": ' + nested(40) + "}"
    body = '{"name": "deep", "code": "result = 1", "schedule": ' + schedule + "}"
    answer = post(client, "/scripts", body)
    assert answer.status_code == 400
    assert "schedule.params" in answer.get_json()["error"]["details"]
    body = json.dumps({"name": "ok", "code": "result = 1"})
    assert post(client, "/scripts", body).status_code == 201
