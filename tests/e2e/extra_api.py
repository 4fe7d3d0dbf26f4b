"""A second API process group over the live service's database, Redis and workers, with some
settings of its own (auth required, a tight rate limit): the API's settings need no new
workers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.e2e.conftest import BIN, LiveService, free_port, start_web, stop, wait_healthy


@contextmanager
def extra_api(
    live: LiveService, logs: Path, *, healthy: bool = True, **settings: str
) -> Iterator[str]:
    """gunicorn as the Procfile runs it, on a port of its own; yields its URL once it is
    healthy (or, with ``healthy=False``, once it answers at all: its Redis may be away)."""
    env = {**live.env, **settings}
    port = free_port()
    with open(logs / f"web-{port}.log", "ab") as out:
        web = start_web(env, out, port)
    try:
        url = f"http://127.0.0.1:{port}"
        if healthy:
            wait_healthy(url, [web])
        else:
            wait_answering(url, web)
        yield url
    finally:
        stop(web)


def wait_answering(url: str, web: subprocess.Popen) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert web.poll() is None, f"the API exited with {web.returncode}"
        try:
            requests.get(f"{url}/api/custom-calculations/health", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


def make_token(live: LiveService, user: str) -> str:
    """A token made with the CLI, as an operator would."""
    made = subprocess.run(
        [str(BIN / "flask"), "--app", "api", "tokens", "create", user],
        env=live.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip().splitlines()[-1]
