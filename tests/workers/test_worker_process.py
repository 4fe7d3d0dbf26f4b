"""A Celery pool process as it starts (``worker_process_init``), in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

from settings import PROJECT_ROOT
from tests.conftest import TEST_REDIS_URL

STARTED = """\
import gc
import workers.tasks  # what a pool process holds when it forks
from workers.celery_app import _reset_after_fork
_reset_after_fork()
print(gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_a_pool_process_keeps_what_it_holds_at_start_out_of_the_collector():
    """Its start-up heap lives as long as it does: a full collection, which an evaluation
    chunk's outcomes set off several times, walks only what jobs made since."""
    done = subprocess.run(
        [sys.executable, "-c", STARTED],
        cwd=PROJECT_ROOT,
        env={**os.environ, "REDIS_URL": TEST_REDIS_URL},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    frozen, collectable = map(int, done.stdout.split()[-2:])
    assert frozen > 50_000  # Celery, SQLAlchemy, numpy, pandas, ...
    assert collectable < frozen / 20
