"""What the worker tests share: waiting for a job, as a client polling it would."""

from __future__ import annotations

import time
from typing import Any

from workers.jobstore import JobStore


def wait_finished(store: JobStore, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The job's public object once it is finished (or as it is when ``timeout`` runs out)."""
    end = time.monotonic() + timeout
    while True:
        job = store.load(job_id, owner=None)
        if job.status.finished or time.monotonic() > end:
            return job.to_public()
        time.sleep(0.05)
