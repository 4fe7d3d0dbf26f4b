"""The real processes: gunicorn serving ``create_app()`` and a prefork Celery worker.

Started once per test session on a fresh SQLite database (the sample, plus 200 more symbols made
from real bars under suffixed names so a 500-symbol job has 500 real series) and a Redis
database index of its own.
"""

from __future__ import annotations

import csv
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
import redis as redis_lib
import requests

from settings import PROJECT_ROOT
from tests.conftest import SAMPLE_PRICES, SAMPLE_STOCKS

E2E_REDIS_URL = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/14")
BIN = Path(sys.executable).parent
SUFFIX = ".E2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_suffixed_copy(target: Path, count: int) -> list[str]:
    """Real bars of ``count`` sample symbols under new names (``AAPL.E2``)."""
    with open(SAMPLE_STOCKS, newline="") as f:
        chosen = [r["symbol"] for r in csv.DictReader(f)][:count]
    wanted = set(chosen)
    with gzip.open(SAMPLE_PRICES, "rt", newline="") as src, open(target, "w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if row[0] in wanted:
                writer.writerow([row[0] + SUFFIX, *row[1:]])
    return [s + SUFFIX for s in chosen]


@dataclass
class LiveService:
    url: str
    env: dict[str, str]
    worker: subprocess.Popen
    web: subprocess.Popen
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def api(self, path: str) -> str:
        return f"{self.url}/api/custom-calculations{path}"

    def run(self, body: dict, timeout: float = 60) -> dict:
        response = requests.post(self.api("/execute"), json={**body, "wait": 25}, timeout=40)
        assert response.status_code in (200, 202), response.text
        job = response.json()
        return self.poll(job["job_id"], timeout)

    def poll(self, job_id: str, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = requests.get(self.api(f"/jobs/{job_id}"), timeout=10).json()
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still unfinished after {timeout} s")

    def pool_pids(self) -> set[int]:
        """The prefork pool processes of the worker (children of the main worker process)."""
        return children_of(self.worker.pid)

    def start_worker(self, name: str) -> subprocess.Popen:
        proc = start_worker(self.env, name, self.logs)
        self.procs.append(proc)
        return proc


BUSY_SAMPLE_SECONDS = 0.05


def children_of(pid: int, *, busy: bool = False) -> set[int]:
    """Child processes of ``pid``; with ``busy``, only those that kept a CPU busy over a short
    sample: a script at work. A pool process's fork server and the idle sandbox child it
    prepares also run, but only for a few milliseconds at a time."""
    before = _children_cpu(pid)
    if not busy:
        return set(before)
    time.sleep(BUSY_SAMPLE_SECONDS)
    after = _children_cpu(pid)
    return {
        child
        for child, cpu in before.items()
        if after.get(child, cpu) - cpu >= 0.4 * BUSY_SAMPLE_SECONDS
    }


def _children_cpu(pid: int) -> dict[int, float]:
    """The children of ``pid`` with the CPU seconds each has used."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def start_worker(
    env: dict[str, str],
    name: str,
    logs: Path,
    *,
    log: Path | None = None,
    under: Sequence[str] = (),
    events: bool = True,
) -> subprocess.Popen:
    """A prefork ``celery worker`` of two pool processes, node ``name``, logging to ``log`` (by
    default ``worker-<name>.log`` under ``logs``); ``under`` is a command that runs it (a
    seccomp filter, say): one helper, so every test starts its workers the same way."""
    with open(log or logs / f"worker-{name}.log", "ab") as out:  # the child keeps its own copy
        return subprocess.Popen(
            [
                *under,
                str(BIN / "celery"),
                "-A",
                "workers.celery_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "INFO",
                *(["--events"] if events else []),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_web(env: dict[str, str], out: IO, port: int) -> subprocess.Popen:
    """gunicorn as the Procfile runs it (our gunicorn.conf.py), on ``port``, logging to ``out``."""
    command = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
    return subprocess.Popen(
        [*command, "api:create_app()"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def wait_healthy(service_url: str, procs: list[subprocess.Popen], workers: int = 1) -> None:
    end = time.monotonic() + 60
    last = None
    while time.monotonic() < end:
        for proc in procs:
            assert proc.poll() is None, f"a service process exited with {proc.returncode}"
        try:
            last = requests.get(f"{service_url}/api/custom-calculations/health", timeout=3)
            if last.status_code == 200 and last.json()["checks"]["workers"] >= workers:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"service not healthy: {getattr(last, 'text', last)}")


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Iterator[LiveService]:
    from api.cli import load_market_data_command  # noqa: F401 - the loader must import
    from db.loader import load_prices_csv, load_stocks_csv
    from db.migrate import upgrade_to_head
    from db.session import make_engine, session_scope

    base = tmp_path_factory.mktemp("e2e")
    db_url = f"sqlite:///{base / 'calc.sqlite3'}"
    upgrade_to_head(db_url)
    extra = base / "extra.csv"
    write_suffixed_copy(extra, 200)
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        load_stocks_csv(SAMPLE_STOCKS, session=session)
    for path in (SAMPLE_PRICES, extra):
        with session_scope(engine) as session:
            load_prices_csv(path, session=session)
    engine.dispose()

    redis_lib.Redis.from_url(E2E_REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": E2E_REDIS_URL,
        "CALC_SYMBOL_CPU_SECONDS": "1",
        "CALC_WORKER_PROCESSES": "2",
        # The load test plays 200 analysts from one address with auth off (one user) on the
        # default limits of submits; only the polls' limit is raised (they poll at 10 Hz).
        "CALC_RATE_LIMIT_DEFAULT": "5000 per second",
        "CALC_JOB_WALL_SECONDS": "60",
        "CANARY_SECRET": "canary-e2e-7f3a9c",
    }
    port = free_port()
    with open(base / "web.log", "ab") as web_log:
        web = start_web(env, web_log, port)
    worker = start_worker(env, "e2e1", base)
    service = LiveService(f"http://127.0.0.1:{port}", env, worker, web, base)
    try:
        wait_healthy(service.url, [web, worker])
        yield service
    finally:
        for proc in [*service.procs, worker, web]:
            stop(proc)
        redis_lib.Redis.from_url(E2E_REDIS_URL).flushdb()


# -- a second API process group over the live service's database, Redis and workers, with
# some settings of its own (auth required, a tight rate limit, no Redis): the API's settings
# need no new workers.


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


@pytest.fixture(scope="module")
def api_without_redis(live, tmp_path_factory):
    """An API whose Redis is away (a port nothing listens on): submits are 503s."""
    logs = tmp_path_factory.mktemp("no-redis-web")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    with extra_api(live, logs, healthy=False, REDIS_URL=nowhere) as url:
        yield url
