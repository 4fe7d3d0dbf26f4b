"""bench.common's CPU by group counts a child that came and went between two readings."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import cpu_by_group

MARKER = f"calc-test-group-{os.getpid()}"
# A parent that starts a child burning 0.3 s of CPU, waits for it, then lingers.
PARENT = f"""
import subprocess, sys, time
subprocess.run([sys.executable, "-c", "import time  # {MARKER}\\n"
                "end = time.process_time() + 0.3\\n"
                "while time.process_time() < end: pass"], check=True)
print("reaped", flush=True)
time.sleep(30)
"""


def test_a_reaped_childs_cpu_counts_in_its_group():
    groups = (("ours", (MARKER.encode(),)),)
    before = cpu_by_group(groups)["ours"]
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, MARKER], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            assert parent.stdout.readline().strip() == "reaped"
            spent = cpu_by_group(groups)["ours"] - before
        finally:
            parent.kill()
    assert 0.28 <= spent < 5  # the child's 0.3 s (in clock ticks), in its parent's reading now
