"""The fork server: children that hold nothing of the worker, and recovery when parts die.

The escaped-code helpers come from test_isolation: plain Python that reaches ``sys`` the way a
script would if it had got past layers 1 and 2, to show what layer 3 alone leaves it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import struct
import subprocess
import sys
import time

from sandbox.executor import Limits, run_batch
from sandbox.fork_client import ForkServer
from sandbox.isolation import fork_server, run_isolated
from tests.sandbox.test_isolation import (
    ITEMS,
    PARAMS,
    assert_rest_computed,
    escaped,
    gone,
    run_escaped,
    sample_items,
)

# Held by the worker (this test process) in memory only: no child may find it.
WORKER_MEMORY_CANARY = f"canary-memory-{os.urandom(8).hex()}"
_HELD_BY_THE_WORKER = {"secret": WORKER_MEMORY_CANARY, "also": [WORKER_MEMORY_CANARY]}


def test_a_child_holds_nothing_of_the_worker() -> None:
    """Even code that escaped every other layer finds no worker memory, module or secret."""
    outcomes = run_escaped(
        f"""
        gc = _module("gc")
        gc.unfreeze()  # what the fork server froze is searched too
        found = 0
        for obj in gc.get_objects():
            # The containers' own iteration, not a subclass's (platform's uname_result
            # would run a subprocess to name the processor).
            values = (dict.values(obj) if isinstance(obj, dict) else list.__iter__(obj)
                      if isinstance(obj, list) else tuple.__iter__(obj)
                      if isinstance(obj, tuple) else ())
            for value in values:
                # (the prefix alone is in this very code: only a whole canary counts)
                if (isinstance(value, str) and value.startswith({WORKER_MEMORY_CANARY[:14]!r})
                        and len(value) == {len(WORKER_MEMORY_CANARY)}):
                    found += 1
        worker_modules = [name for name in sys.modules
                          if name.split(".")[0] in ("pytest", "_pytest", "tests", "celery",
                                                    "sqlalchemy", "redis", "flask", "workers",
                                                    "api", "db", "settings")]
        result = {{"found": found, "worker_modules": len(worker_modules),
                   "modules": len(sys.modules), "argv": len(" ".join(sys.argv))}}
        """
    )
    assert _HELD_BY_THE_WORKER["secret"] == WORKER_MEMORY_CANARY
    for _, out in outcomes:
        assert out["error"] is None, out
        assert out["value"]["found"] == 0
        assert out["value"]["worker_modules"] == 0
    assert WORKER_MEMORY_CANARY not in repr(outcomes)


def test_a_chunk_file_reused_holds_nothing_of_the_chunk_before() -> None:
    """Chunks travel in memory files the worker reuses: a smaller chunk after a bigger one
    must not find the bigger one's tail in its mapping (another user's data and code)."""
    canary = 1.0 + int.from_bytes(os.urandom(6), "big") / 2**48  # an unmistakable value
    big = tuple(dataclasses.replace(item, close=(canary,) * 3000) for item in sample_items(8, 3000))
    outcomes = list(run_batch("result = close[-1]", big, params=PARAMS, limits=Limits()))
    assert [out["value"] for _, out in outcomes] == [canary] * len(big)
    pattern = struct.pack("<d", canary)
    searched = run_isolated(
        escaped(
            f"""
            gc = _module("gc")
            gc.unfreeze()
            views = [obj for obj in gc.get_objects() if isinstance(obj, builtins.memoryview)]
            result = {{"bytes": sum(view.nbytes for view in views),
                       "found": sum(builtins.bytes(view).count({pattern!r}) for view in views)}}
            """
        ),
        ITEMS[:1],
        "{}",
        Limits(),
    )
    for _, out in searched:
        assert out["error"] is None, out
        assert out["value"]["bytes"] > 0  # it did find its own chunk's mapping
        assert out["value"]["found"] == 0


def test_the_fork_server_and_its_children_are_named_for_operators() -> None:
    server = fork_server()
    idle = server.idle_pids() - {server.process.pid}
    assert idle, "the server keeps a child ready"
    assert _comm(server.process.pid) == "calc-forksrv"
    assert {_comm(pid) for pid in idle} == {"calc-sandbox"}


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as comm:
        return comm.read().strip()


def test_the_fork_server_has_nothing_of_the_workers_environment() -> None:
    """Only the fixed hash seed (fork_client.py), however much the worker's environment holds."""
    os.environ["CALC_CANARY_SECRET"] = "do-not-leak"
    try:
        server = ForkServer()
        try:
            with open(f"/proc/{server.process.pid}/environ", "rb") as environ:
                assert environ.read() == b"PYTHONHASHSEED=0\0"
        finally:
            server.close()
    finally:
        del os.environ["CALC_CANARY_SECRET"]


def test_a_killed_fork_server_is_replaced_and_no_symbol_pays() -> None:
    old = fork_server()
    os.kill(old.process.pid, signal.SIGKILL)
    old.process.wait(5)
    outcomes = list(run_batch("result = close[-1]", ITEMS, params=PARAMS, limits=Limits()))
    assert_rest_computed(outcomes, 0)
    assert fork_server() is not old and fork_server().alive()


def test_an_idle_child_killed_from_outside_is_replaced_and_no_symbol_pays() -> None:
    server = fork_server()
    idle = server.idle_pids() - {server.process.pid}
    assert idle, "the server keeps a child ready"
    for pid in idle:
        os.kill(pid, signal.SIGKILL)
    outcomes = list(run_batch("result = close[-1]", ITEMS, params=PARAMS, limits=Limits()))
    assert_rest_computed(outcomes, 0)
    assert not (server.idle_pids() & idle)


def test_the_fork_server_and_its_idle_child_die_with_their_worker() -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from sandbox.isolation import fork_server\n"
            "pids = fork_server().idle_pids()\n"
            "print(*pids, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    with worker.stdout:
        pids = [int(pid) for pid in worker.stdout.readline().split()]
    assert len(pids) == 2  # the fork server and one idle child
    worker.kill()
    worker.wait(5)
    deadline = time.monotonic() + 5
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in pids)
    for pid in pids:  # adopted by this process (a subreaper) or by init: reap ours
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
