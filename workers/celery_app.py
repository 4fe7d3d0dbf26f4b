"""The Celery app. Its settings come from ``celeryconfig`` (the environment, once).

``celery -A workers.celery_app worker`` and ``beat`` and ``flower`` use this app;
the API imports it only to send tasks.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_process_init

from settings import Settings

app = Celery("calc", include=["workers.tasks"])
app.config_from_object("celeryconfig")


def configure(settings: Settings) -> Celery:
    """Point the app at ``settings`` (used by ``create_app`` and tests)."""
    from celeryconfig import celery_options

    app.conf.update(celery_options(settings))
    from workers import runtime

    runtime.configure(settings)
    return app


@setup_logging.connect
def _json_logs(**_: object) -> None:
    """Celery's own records and ours, as JSON lines (connecting here replaces Celery's setup)."""
    import logconfig

    logconfig.configure(app.conf.calc_settings.log_level)


@worker_init.connect
def _yield_the_cpu_to_the_api(**_: object) -> None:
    """Before the pool forks: the worker's processes and their sandboxes all run nicer than the
    API on a shared machine. Measured with ``bench.load`` (200 clients submitting at once, on
    2 cores, the same code either way), submit p99 median 404 ms with the worker at nice 19
    against 555 ms at nice 0 (9 runs each, alternating): the burst's submits no longer share
    the cores with the jobs they started. Jobs lose nothing when the machine is otherwise
    idle. Its session's scheduling group gets the same niceness, without which the kernel's
    autogroups made the process's own count for nothing (``workers/session_priority.py``)."""
    from sandbox.child import lower_priority
    from workers.session_priority import lower_session_priority

    niceness = app.conf.calc_settings.worker_niceness
    lower_priority(niceness)
    lower_session_priority(niceness)


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    """A forked pool process must not share the parent's sockets; its sandbox fork server
    starts now, before the process has seen any job, so that it holds none."""
    import logging

    from sandbox.executor import start_isolation
    from workers import runtime

    runtime.reset_after_fork()
    try:
        start_isolation()
    except (OSError, RuntimeError):  # the first chunk tries again (and fails loudly if it must)
        logging.getLogger(__name__).exception("sandbox fork server did not start")
