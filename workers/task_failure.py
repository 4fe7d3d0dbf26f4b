"""A task that fails on a job ends that job ``failed`` at once, with a true message.

Without this, an exception no one expected (a record the worker cannot read, a bug) left the
job ``queued`` or ``running`` until the watchdog said "no worker picked up the job" minutes
later, which was false. The outages the tasks retry (database, Redis) are not ours to end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import redis
from celery.exceptions import Retry, SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from logconfig import job_fields
from sandbox.fork_client import ConfinementRefusedError
from workers.jobstore import JobStore
from workers.status import JobStatus

log = logging.getLogger(__name__)

# Left to the task: retried outages, Celery's own control flow.
_NOT_OURS = (OperationalError, redis.ConnectionError, Retry, SoftTimeLimitExceeded)


def worker_error(exc: BaseException) -> dict[str, str]:
    """The job's ``error`` for an exception the worker met running it."""
    if isinstance(exc, ConfinementRefusedError):  # strict, and the kernel refused a step
        return {
            "type": "WorkerError",
            "message": "the worker runs no user code: the kernel refused its sandbox's "
            "confinement (see /health); nothing of this job ran there",
        }
    return {
        "type": "WorkerError",
        "message": f"the worker could not run this job ({type(exc).__name__}); "
        "nothing more of it will run",
    }


@contextlib.contextmanager
def job_fails_on_error(store: JobStore, job_id: str) -> Iterator[None]:
    """Run the block; an unexpected exception fails ``job_id`` now (its remaining symbols get
    the same error) and is logged with its traceback, not raised into Celery again."""
    try:
        yield
    except _NOT_OURS:
        raise
    except Exception as exc:
        log.exception("job failed in the worker", extra=job_fields(job_id))
        err = worker_error(exc)
        with contextlib.suppress(redis.RedisError):
            store.finish(job_id, JobStatus.FAILED, error=err, fill_error=err)
