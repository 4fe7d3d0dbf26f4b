"""The workers' Celery app (``celery -A workers.celery_app worker``, ``beat``, ``flower``).

Its settings come from ``celeryconfig`` (the environment, once). Each worker process keeps
its long-lived objects in one ``Runtime`` (``worker_runtime``), made afresh after fork.
The API never imports this module: it publishes by task name (``workers.publisher``).
"""

from __future__ import annotations

import gc
import logging

import redis
from celery import Celery
from celery.signals import celeryd_after_setup, setup_logging, worker_process_init

import logconfig
from sandbox.executor import start_isolation
from sandbox.fork_client import ConfinementRefusedError
from settings import Settings
from workers.celery_settings import celery_options
from workers.health import REFUSED, Heartbeat, forget_confinement, report_confinement
from workers.runtime import Runtime

log = logging.getLogger(__name__)

app = Celery("calc", include=["workers.tasks"])
app.config_from_object("celeryconfig")
app.steps["worker"].add(Heartbeat)  # what /health counts (workers/health.py)

_runtime: Runtime | None = None
_node: str | None = None  # this worker's node name (``-n``), for what it reports to /health


def configure(settings: Settings) -> Celery:
    """Point the app and this process's runtime at ``settings`` (tests use it)."""
    global _runtime  # noqa: PLW0603 - one runtime per process, replaced only here
    app.conf.update(celery_options(settings))
    if _runtime is not None:
        _runtime.close()
    _runtime = Runtime(settings)
    return app


def worker_runtime() -> Runtime:
    """This process's runtime, made on first use from the app's settings."""
    global _runtime  # noqa: PLW0603 - see configure
    if _runtime is None:
        _runtime = Runtime(app.conf.calc_settings)
    return _runtime


@setup_logging.connect
def _json_logs(**_: object) -> None:
    """Celery's own records and ours, as JSON lines (connecting here replaces Celery's setup)."""
    logconfig.configure(app.conf.calc_settings.log_level)


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    """A forked pool process must not share the parent's sockets; its sandbox fork server
    starts now, before the process has seen any job, so that it holds none."""
    global _runtime  # noqa: PLW0603 - see configure
    if _runtime is not None:
        _runtime = _runtime.after_fork()
    level = None
    try:
        level = start_isolation(app.conf.calc_settings.sandbox_confinement)
        log.info("sandbox confinement: %s", level, extra={"confinement": level})
    except ConfinementRefusedError as exc:  # one clear line; every chunk then fails as well
        level = REFUSED
        log.error("sandbox confinement refused: %s", exc)
    except (OSError, RuntimeError):  # the first chunk tries again (and fails loudly if it must)
        log.exception("sandbox fork server did not start")
    if level is not None and _node is not None:  # what /health reports (workers/health.py)
        try:
            report_confinement(worker_runtime().redis, _node, level)
        except redis.RedisError:
            log.warning("sandbox confinement not reported: Redis unavailable")
    # What the process holds now (Celery, SQLAlchemy, pandas: ~120,000 objects) lives as long
    # as it does: out of the collector's sight, a full collection walks only what jobs made.
    # An evaluation chunk's outcomes set off a few such collections; each walked it all, a
    # fifth of the process's CPU (195 of 1,070 ms over 25,000 runs; 8 ms frozen).
    gc.freeze()


@celeryd_after_setup.connect
def _remember_node(sender: str, **_: object) -> None:
    """The worker's node name, before its pool forks: each pool process reports under it."""
    global _node  # noqa: PLW0603 - set once, in the main process, before the fork
    _node = sender
    client = redis.Redis.from_url(app.conf.calc_settings.redis_url, socket_timeout=2.0)
    try:
        forget_confinement(client, sender)
    except redis.RedisError:
        log.warning("sandbox confinement not reset: Redis unavailable")
    finally:
        client.close()
