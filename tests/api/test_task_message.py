"""The task message a submit leaves on the broker (no worker here: it stays queued)."""

from __future__ import annotations

import base64
import json

from tests.api.helpers import submit


def test_the_queued_task_is_json_and_names_the_job_as_flower_shows_it(client, redis_client):
    """The broker holds JSON only (never pickle), and the task's id and arguments, as Flower
    lists them, are the job id the client polls."""
    response = submit(client, {"script": "result = 1", "symbols": ["AAPL"]})
    job_id = response.get_json()["job_id"]
    [raw] = redis_client.lrange("celery", 0, -1)
    message = json.loads(raw)
    assert message["content-type"] == "application/json"
    headers = message["headers"]
    assert (headers["task"], headers["id"]) == ("calc.run_job", job_id)
    assert (headers["argsrepr"], headers["kwargsrepr"]) == (f"('{job_id}',)", "{}")
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([job_id], {})
