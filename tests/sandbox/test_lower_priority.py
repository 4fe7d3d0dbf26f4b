"""A process lowers its CPU priority (the worker for the API, a sandbox child for both)."""

from __future__ import annotations

import os
import subprocess
import sys

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
