"""What any Flask request costs here: the same burst as ``bench.submit_burst`` at a bare app.

    python -m bench.floor [--clients 200] [--rounds 3]

Starts gunicorn with our settings that bear on CPU (2 processes, ``reuse_port``, 4 threads
each, as many as ``api/slots.py`` lets run, each process on a CPU of its own as
``api/cpu_pinning.py`` puts it) serving ``floor_app`` below: a Flask app whose
``POST /execute`` parses the JSON body and answers 202 with a small JSON, and nothing else (no
auth, no rate limit, no Redis). It prints that server's CPU per request and p50/p99 for 200
submit-shaped requests at once: the floor under ``bench.submit_burst``'s figures on the same
machine, which no change to our own code can go below.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask, request

from api.cpu_pinning import least_used_cpu
from bench.load import API
from bench.run_bench import universe
from bench.submit_burst import measure, submit_request
from settings import PROJECT_ROOT

floor_app = Flask(__name__)


@floor_app.post(f"{API}/execute")
def execute():
    body = request.get_json()
    return {"job_id": "0", "status": "queued", "total": len(body["symbols"])}, 202


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    # Run from elsewhere: in the project's folder gunicorn would read our gunicorn.conf.py,
    # whose warm-up is for our app.
    command = ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"]
    command += ["--worker-class", "gthread", "--reuse-port", "bench.floor:floor_app"]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), *command],
        cwd=tempfile.gettempdir(),
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # the master and both processes up
        pin_apart(children(server.pid))
        pids = [server.pid, *children(server.pid)]
        symbols, _ = universe(200)
        rng = random.Random(7)
        for round_no in range(1, args.rounds + 1):
            jobs = [rng.sample(symbols, rng.randint(50, 200)) for _ in range(args.clients)]
            requests = [submit_request(None, s) for s in jobs]
            figures = measure(f"http://127.0.0.1:{port}", requests, pids)
            print(f"round {round_no}: bare Flask {figures}")
    finally:
        server.terminate()
        server.wait(10)


def pin_apart(pids: list[int]) -> None:
    """Each process on a CPU of its own, as our gunicorn.conf.py does (before their first
    request: the request threads they start then inherit it)."""
    cpus: list[int | None] = []
    for pid in pids:
        cpus.append(least_used_cpu(os.sched_getaffinity(0), cpus))
        for thread in Path(f"/proc/{pid}/task").iterdir():
            os.sched_setaffinity(int(thread.name), {cpus[-1]})


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


if __name__ == "__main__":
    main()
