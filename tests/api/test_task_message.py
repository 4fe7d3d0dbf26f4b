"""The task message a submit leaves on the broker (no worker here: it stays queued)."""

from __future__ import annotations

import base64
import json

from tests.api.helpers import submit


def test_the_queued_task_is_json_and_names_the_job_as_flower_shows_it(client, redis_client):
    """The broker holds JSON only (never pickle): a ``calc.run_next`` token without arguments,
    its id and shown arguments naming the job id the client polls; the job's start waits in
    its owner's fair queue, as JSON too (workers/fairqueue.py)."""
    response = submit(client, {"script": "result = 1", "symbols": ["AAPL"]})
    job_id = response.get_json()["job_id"]
    [raw] = redis_client.lrange("celery", 0, -1)
    message = json.loads(raw)
    assert message["content-type"] == "application/json"
    headers = message["headers"]
    assert headers["task"] == "calc.run_next"
    assert headers["id"].startswith(f"{job_id}:start:")
    assert (headers["argsrepr"], headers["kwargsrepr"]) == (f"(pushed with '{job_id}' start)", "{}")
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([], {})
    assert [json.loads(e) for e in redis_client.lrange("calc:fair:q:", 0, -1)] == [
        {"job": job_id, "start": True}
    ]
    assert redis_client.lrange("calc:fair:owners", 0, -1) == [""]
