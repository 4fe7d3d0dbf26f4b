"""``python -m tests.sandbox.confined_run MODE BODY CPU``: a worker's sandbox in a process of its
own, for tests that start it where the kernel refuses a step (kernel_refuses.py) or as a
non-root user: things the test process itself must not become.

It starts the fork server in ``MODE`` (CALC_SANDBOX_CONFINEMENT as a user typed it, through
settings.py), prints one JSON line with the confinement that held or why none did, then runs
the escaped code ``BODY`` (escape.py) on two made-up symbols with CPU budget CPU and prints a second
line: each symbol's outcome, or the exception that refused the whole batch.
"""

from __future__ import annotations

import json
import os
import sys

from sandbox.executor import Limits, start_isolation
from sandbox.fork_client import ConfinementRefusedError
from sandbox.isolation import run_isolated
from sandbox.runner import SymbolInput
from settings import Settings
from tests.sandbox.escape import escaped

# Two made-up series: this process imports nothing of the test suite's (a non-root user may
# not even have the same Python's standard library to import it with).
CLOSES = tuple(100.0 + i for i in range(30))
ITEMS = tuple(
    SymbolInput(
        symbol,
        tuple(f"2024-01-{1 + i % 28:02d}" for i in range(30)),
        CLOSES,
        CLOSES,
        CLOSES,
        CLOSES,
        tuple(1 for _ in CLOSES),
        {},
    )
    for symbol in ("AAA", "BBB")
)


def _say(line: dict[str, object]) -> None:
    print(json.dumps(line), flush=True)


def main() -> None:
    mode = Settings.from_env({"CALC_SANDBOX_CONFINEMENT": sys.argv[1]}).sandbox_confinement
    facts = {"mode": mode, "uid": os.getuid(), "pid": os.getpid()}
    try:
        _say({**facts, "confinement": start_isolation(mode)})
    except ConfinementRefusedError as exc:
        _say({**facts, "refused": str(exc)})
    try:
        limits = Limits(cpu_seconds=float(sys.argv[3]), memory_mb=256, stdout_bytes=4096)
        _say({"outcomes": list(run_isolated(escaped(sys.argv[2]), ITEMS, "{}", limits))})
    except ConfinementRefusedError as exc:
        _say({"batch_refused": type(exc).__name__, "message": str(exc)})


if __name__ == "__main__":
    main()
