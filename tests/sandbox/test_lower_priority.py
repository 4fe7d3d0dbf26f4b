"""A process lowers its CPU priority (the worker for the API, a sandbox child for both)."""

from __future__ import annotations

import os
import subprocess
import sys

from sandbox.child import CHILD_NICENESS
from settings import PROJECT_ROOT

RAISE_THEN_TRY_TO_LOWER = """
from sandbox.child import lower_priority
print(lower_priority(5), lower_priority(3), lower_priority(50))
"""


def test_lower_priority_raises_niceness_and_never_lowers_it():
    start = os.nice(0)  # the test runner may be nice itself
    done = subprocess.run(
        [sys.executable, "-c", RAISE_THEN_TRY_TO_LOWER],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first = max(start, 5)
    assert done.stdout.split() == [str(first), str(first), "19"]


# A worker at a niceness between 0 and the children's (an operator's choice) runs a script.
CHILD_NICENESS_UNDER_A_NICE_WORKER = """
import os, sys
print(os.nice(int(sys.argv[1])))
from tests.sandbox.test_isolation import run_escaped
for _, out in run_escaped("result = os.nice(0)"):
    print(out["value"], out["error"])
"""


def test_user_code_runs_at_the_childrens_niceness_or_the_workers_if_higher():
    """Not 10 more than the worker: the fork server and its children are *at least* 10."""
    for raise_by in (5, 15):
        done = subprocess.run(
            [sys.executable, "-c", CHILD_NICENESS_UNDER_A_NICE_WORKER, str(raise_by)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        worker, *children = done.stdout.split()
        assert children == [str(max(CHILD_NICENESS, int(worker))), "None"] * 2, done.stderr
