"""The worker's session group yields the CPU too, but only when the session is the worker's own.

Each test starts real processes in a session of their own and reads the kernel's answer
from /proc; the runner's own session is never touched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from settings import PROJECT_ROOT

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="this kernel has no autogroups"
)

# Lowers its session's priority, then starts a child that reports the group it is in.
LOWER_AND_REPORT = """
import subprocess, sys
from workers.session_priority import lower_session_priority
print(lower_session_priority(int(sys.argv[1])))
print(open("/proc/self/autogroup").read().split()[-1])
child = subprocess.run(["cat", "/proc/self/autogroup"], capture_output=True, text=True)
print(child.stdout.split()[-1])
"""


def run_in_new_session(command: list[str]) -> list[str]:
    done = subprocess.run(
        command,
        check=False,  # the assertion below shows stderr
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_session_of_its_own_gets_the_niceness_and_its_children_share_it():
    said, group, child_group = run_in_new_session([sys.executable, "-c", LOWER_AND_REPORT, "19"])
    assert (said, group, child_group) == ("True", "19", "19")


def test_started_by_a_shell_the_session_is_still_the_workers_own():
    """honcho runs each Procfile line with ``sh -c``, which stays as the worker's parent."""
    script = f"{sys.executable} -c '{LOWER_AND_REPORT}' 7; true"  # `; true`: sh forks
    said, group, _ = run_in_new_session(["sh", "-c", script])
    assert (said, group) == ("True", "7")


def test_a_session_shared_with_another_process_keeps_its_niceness():
    """A stranger (here a sleep the shell left behind) would be slowed down with the worker."""
    script = f"(sleep 30 >/dev/null 2>&1 &); {sys.executable} -c '{LOWER_AND_REPORT}' 19; true"
    said, group, _ = run_in_new_session(["sh", "-c", script])
    assert (said, group) == ("False", "0")
