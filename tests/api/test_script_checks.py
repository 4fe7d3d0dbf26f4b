"""Scripts checked at submit on every route that takes code (API.md, "Checked at submit"):
an undefined name is a 400 ``NameError`` with its line, column and the closest names, and a
compile bomb a prompt 400; nothing is saved or queued."""

from __future__ import annotations

import time

import pytest

from tests.api.helpers import BASE

TYPO = "window = 20\nx = sma(clsoe, window)\nresult = x[-1]\n"
BOMB = "def f():\n" + "".join(
    f"{' ' * (4 * i + 4)}try:\n{' ' * (4 * i + 8)}return 1\n{' ' * (4 * i + 4)}finally:\n"
    for i in range(13)
) + " " * 56 + "return 2\n"  # fmt: skip


def _routes(code: str) -> list[tuple[str, str, dict]]:
    script = {"name": "typo", "code": code}
    return [
        ("post", "/validate", {"code": code}),
        ("post", "/execute", {"script": code, "symbols": ["AAPL"]}),
        (
            "post",
            "/evaluate",
            {
                "script": code,
                "symbols": ["AAPL", "MSFT"],
                "start": "2017-01-03",
                "end": "2017-06-30",
            },
        ),
        ("post", "/scripts", script),
    ]


def _no_name_error(response) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["type"] == "NameError"
    assert error["message"] == "name `clsoe` is not defined: did you mean `close`?"
    assert error["details"] == {"line": 2, "column": 9, "name": "clsoe", "suggestions": ["close"]}


@pytest.mark.parametrize(("method", "path", "body"), _routes(TYPO))
def test_an_undefined_name_is_a_400_name_error(client, redis_client, method, path, body):
    _no_name_error(getattr(client, method)(f"{BASE}{path}", json=body))
    assert redis_client.keys("calc:job:*") == []
    assert client.get(f"{BASE}/scripts").get_json()["total"] == 0


def test_updating_a_saved_script_to_a_typo_is_refused(client):
    created = client.post(f"{BASE}/scripts", json={"name": "ok", "code": "result = close[-1]"})
    assert created.status_code == 201
    script_id = created.get_json()["id"]
    _no_name_error(client.put(f"{BASE}/scripts/{script_id}", json={"name": "ok", "code": TYPO}))
    assert client.get(f"{BASE}/scripts/{script_id}").get_json()["code"] == "result = close[-1]"


@pytest.mark.parametrize(("method", "path", "body"), _routes(BOMB))
def test_a_compile_bomb_is_a_prompt_400(client, method, path, body):
    start = time.perf_counter()
    response = getattr(client, method)(f"{BASE}{path}", json=body)
    elapsed = time.perf_counter() - start
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "SyntaxError" and "finally" in error["message"]
    assert error["details"]["line"] == 2
    assert elapsed < 1.0, f"{elapsed:.2f} s"
