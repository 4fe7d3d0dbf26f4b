"""The entry points as operators start them: gunicorn with our gunicorn.conf.py and the Celery
worker refuse settings they cannot run with in one line; two API servers on one host share
nothing that stopping one could take from the other."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from settings import PROJECT_ROOT
from tests.e2e.conftest import BIN, free_port, start_web, stop

pytestmark = pytest.mark.slow


@pytest.fixture
def service_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    from db.migrate import upgrade_to_head

    database_url = f"sqlite:///{tmp_path / 'calc.sqlite3'}"
    upgrade_to_head(database_url)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    env.pop("CALC_AUTH", None)
    return env


@pytest.fixture
def start_api(tmp_path: Path, service_env: dict[str, str]) -> Iterator:
    started: list[subprocess.Popen] = []

    def start(**env: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = open(tmp_path / f"web-{port}.log", "w+")  # noqa: SIM115 - read after exit
        web = start_web({**service_env, **env}, log, port)
        web.log = log  # type: ignore[attr-defined]
        started.append(web)
        return web, f"http://127.0.0.1:{port}/api/custom-calculations"

    yield start
    for web in started:
        stop(web)
        web.log.close()


def output(web: subprocess.Popen) -> str:
    web.log.seek(0)  # type: ignore[attr-defined]
    return web.log.read()  # type: ignore[attr-defined]


def serving(web: subprocess.Popen, url: str) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert web.poll() is None, output(web)
        try:
            if requests.get(f"{url}/openapi.json", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not come up")


def one_line_refusal(stderr: str, variable: str) -> None:
    lines = [line for line in stderr.splitlines() if variable in line]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("value", ["true", "on", "YES", "1", "required"])
def test_gunicorn_with_auth_switched_on_in_any_documented_spelling_needs_a_token(
    start_api, value: str
) -> None:
    web, url = start_api(CALC_AUTH=value)
    serving(web, url)
    answer = requests.get(f"{url}/jobs", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "Unauthorized"


@pytest.mark.parametrize("value", ["maybe", "ture", "requried", "enabled"])
def test_gunicorn_refuses_to_start_on_an_unknown_auth_value(start_api, value: str) -> None:
    web, _ = start_api(CALC_AUTH=value)
    assert web.wait(timeout=60) != 0
    one_line_refusal(output(web), "CALC_AUTH")


def test_the_worker_refuses_to_start_on_an_unknown_auth_value(service_env) -> None:
    done = subprocess.run(
        [str(BIN / "celery"), "-A", "workers.celery_app", "worker", "--pool", "solo"],
        check=False,
        cwd=PROJECT_ROOT,
        env={**service_env, "CALC_AUTH": "maybe"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    one_line_refusal(done.stderr, "CALC_AUTH")


def test_stopping_one_of_two_api_servers_on_a_host_leaves_the_other_whole(
    start_api, tmp_path: Path
) -> None:
    """Both servers run as one user with one home (two services, or a test run beside a running
    service): nothing per-user that one creates can be deleted under the other."""
    home, runtime_dir = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime_dir.mkdir()
    per_user = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime_dir)}
    first, first_url = start_api(**per_user)
    second, second_url = start_api(**per_user)
    serving(first, first_url)
    serving(second, second_url)

    def shared() -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("[hr]*/**/*"))

    before = shared()
    os.killpg(first.pid, signal.SIGTERM)
    assert first.wait(timeout=30) == 0

    # Nothing per-user (gunicorn's control socket defaults there) that the first could delete.
    assert before == shared() == []
    for _ in range(20):
        assert requests.get(f"{second_url}/openapi.json", timeout=5).status_code == 200
    os.killpg(second.pid, signal.SIGTERM)
    assert second.wait(timeout=30) == 0
