"""Every setting of the service, read from the environment in one place.

``ENVIRONMENT`` is the one table of the variables the service reads: each one's field, its
default as the README's table gives it, and what it means (a test checks the README's table
against it, and that no other module of the product reads the environment). Only the entry
points (``api.create_app``, ``celeryconfig``, ``gunicorn.conf.py``) call
``Settings.from_env()``; everything below them receives plain values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_SQLITE_URL = f"sqlite:///{PROJECT_ROOT / 'instance' / 'calc.sqlite3'}"


class SettingsError(ValueError):
    """A setting the service cannot run with; its message is one line naming the variable.

    The entry points (gunicorn's ``on_starting``, ``celeryconfig``, the CLI) turn it into
    that line and a non-zero exit, never a traceback and never a silent default."""


# CALC_AUTH's spellings. A security setting fails closed: anything not listed refuses to start
# (``CALC_AUTH=ture`` must not quietly mean "no auth").
AUTH_REQUIRED_SPELLINGS = ("required", "on", "true", "yes", "1")
AUTH_OFF_SPELLINGS = ("off", "false", "no", "0", "")
EXECUTE_RATE_LIMIT_WITH_AUTH = "30 per second"  # per user


def _auth(name: str, raw: str) -> str:
    spelled = raw.strip().lower()
    if spelled in AUTH_REQUIRED_SPELLINGS:
        return "required"
    if spelled in AUTH_OFF_SPELLINGS:
        return "off"
    raise SettingsError(
        f"{name} must be one of {', '.join(AUTH_REQUIRED_SPELLINGS)} (auth required) "
        f"or {', '.join(s for s in AUTH_OFF_SPELLINGS if s)} or empty (auth off), "
        f"not {raw!r}"
    )


# CALC_SANDBOX_CONFINEMENT: what a worker does when the kernel refuses a confinement step of
# its sandbox children (sandbox/confine.py). Fails closed as CALC_AUTH does.
CONFINEMENT_MODES = ("strict", "relaxed")


def _confinement(name: str, raw: str) -> str:
    spelled = raw.strip().lower()
    if spelled in CONFINEMENT_MODES:
        return spelled
    raise SettingsError(
        f"{name} must be strict (the default: no user code runs unless every confinement "
        f"step holds) or relaxed, not {raw!r}"
    )


def _int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative, not {raw!r}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{name} must be a finite number, not negative, not {raw!r}")
    return value


def _text(name: str, raw: str) -> str:
    return raw.strip()


@dataclass(frozen=True)
class Settings:
    """The service's configuration; immutable so nothing can drift after start-up."""

    database_url: str = DEFAULT_SQLITE_URL
    market_data_url: str = ""  # empty: the same database as database_url
    redis_url: str = "redis://127.0.0.1:6379/0"
    auth: str = "off"  # "off" or "required"
    log_level: str = "INFO"

    # The API's processes (gunicorn.conf.py).
    port: int = 8000
    api_processes: int = 2
    api_threads: int = 32  # a long poll holds its thread; api_active_requests run at once
    api_active_requests: int = 4  # requests of one API process running at once (api/slots.py)

    # Request limits (API.md).
    max_code_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    max_wait_seconds: float = 30.0
    max_active_jobs: int = 20  # queued or running jobs per authenticated user; more is a 429
    max_backlog_symbols: int = 50_000  # symbols queued or running, all users; more is a 429
    # POST /execute's own limit per user; empty: 30 a second with auth required, and none of
    # its own with auth off (one anonymous user: the default limit, per address, applies).
    rate_limit_execute: str = ""
    rate_limit_default: str = "300 per second"

    # Jobs.
    job_ttl_seconds: int = 24 * 3600
    job_wall_seconds: float = 10.0  # default wall-clock limit of a job, from its first chunk
    queue_timeout_seconds: float = 300.0  # a job no worker started by then fails (NoWorker)
    max_job_wall_seconds: float = 60.0  # a request may ask for less, never more
    evaluation_wall_seconds: float = 600.0  # an evaluation's limit; a request may ask for less
    # An evaluation chunk runs this long before it hands its unfinished symbols back to the
    # fair queue, when another user's work waits (workers.fairqueue's quantum, for /execute).
    evaluation_chunk_seconds: float = 3.0
    # The processes a worker forks (celeryconfig's worker_concurrency) ...
    worker_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    # ... and those of every worker together, for chunk planning; 0: this worker's own.
    cluster_processes: int = 0
    chunks_per_process: int = 2
    min_chunk_size: int = 100  # per-chunk costs (a task hop, a query, a fork) amortize over this

    # Sandbox limits.
    symbol_cpu_seconds: float = 1.0
    child_memory_mb: int = 256
    stdout_bytes: int = 4096
    bars_cache_bars: int = 2_000_000  # bars each worker process keeps packed (~100 MB)
    sandbox_confinement: str = "strict"  # or "relaxed" (CALC_SANDBOX_CONFINEMENT)

    def __post_init__(self) -> None:
        if self.auth not in ("off", "required"):  # fails closed, even when built in code
            raise SettingsError(f"auth must be 'off' or 'required', not {self.auth!r}")
        if self.sandbox_confinement not in CONFINEMENT_MODES:
            raise SettingsError(
                f"sandbox_confinement must be strict or relaxed, not {self.sandbox_confinement!r}"
            )

    @property
    def execute_rate_limit(self) -> str | None:
        """``POST /execute``'s own limit, if it has one (see ``rate_limit_execute``)."""
        if self.rate_limit_execute:
            return self.rate_limit_execute
        return EXECUTE_RATE_LIMIT_WITH_AUTH if self.auth == "required" else None

    @property
    def market_data_url_or_default(self) -> str:
        return self.market_data_url or self.database_url

    @property
    def planned_processes(self) -> int:
        """The worker processes chunk planning spreads a job over: every worker's together
        (``CALC_CLUSTER_PROCESSES``), or this one's when that is not set."""
        return self.cluster_processes or self.worker_processes

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``): each variable of
        ``ENVIRONMENT`` that is set and not empty; other keys are ignored."""
        env = os.environ if env is None else env
        given = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(name)
            if raw is not None and raw.strip() != "":
                given[variable.field] = variable.read(name, raw)
        return cls(**given)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use it)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: the field it sets, how its text is read, its default as the
    README's table writes it, and what it is for."""

    field: str
    read: Callable[[str, str], object]
    default: str
    meaning: str


ENVIRONMENT: dict[str, Variable] = {
    "DATABASE_URL": Variable(
        "database_url",
        _text,
        "`sqlite:///instance/calc.sqlite3`",
        "app database (scripts, runs, audit, tokens)",
    ),
    "MARKET_DATA_URL": Variable(
        "market_data_url", _text, "`DATABASE_URL`", "market data (read only in production)"
    ),
    "REDIS_URL": Variable(
        "redis_url", _text, "`redis://127.0.0.1:6379/0`", "Celery broker and job store"
    ),
    "CALC_AUTH": Variable(
        "auth",
        _auth,
        "`off`",
        "`required` (or `on`/`true`/`yes`/`1`) to need bearer tokens; an unknown value "
        "refuses to start",
    ),
    "CALC_LOG_LEVEL": Variable("log_level", _text, "`INFO`", "log level of every process"),
    "PORT": Variable("port", _int, "`8000`", "the API's port (gunicorn; `--bind` wins)"),
    "CALC_API_PROCESSES": Variable("api_processes", _int, "`2`", "API (gunicorn) processes"),
    "CALC_API_THREADS": Variable(
        "api_threads", _int, "`32`", "threads of each API process (a long poll holds one)"
    ),
    "CALC_API_ACTIVE_REQUESTS": Variable(
        "api_active_requests",
        _int,
        "`4`",
        "requests of one API process running at once (long polls wait outside)",
    ),
    "CALC_MAX_CODE_BYTES": Variable(
        "max_code_bytes", _int, "`65536`", "a script's code (more is a 413 naming `code`)"
    ),
    "CALC_MAX_BODY_BYTES": Variable(
        "max_body_bytes", _int, "`1048576`", "a request body (more is a 413 naming `body`)"
    ),
    "CALC_MAX_ACTIVE_JOBS": Variable(
        "max_active_jobs",
        _int,
        "`20`",
        "queued or running jobs per authenticated user (more is a 429); with auth off there "
        "is one anonymous user (everyone) and no per-user cap",
    ),
    "CALC_MAX_BACKLOG_SYMBOLS": Variable(
        "max_backlog_symbols",
        _int,
        "`50000`",
        "symbols of queued or running jobs, all users together; a submit that would pass it "
        "is a 429 with `Retry-After` (see below)",
    ),
    "CALC_RATE_LIMIT_EXECUTE": Variable(
        "rate_limit_execute",
        _text,
        "`30 per second` with auth required, none of its own with auth off",
        "`POST /execute`'s own limit per token or address (set explicitly, it applies with "
        "auth off too)",
    ),
    "CALC_RATE_LIMIT_DEFAULT": Variable(
        "rate_limit_default",
        _text,
        "`300 per second`",
        "every other route's limit, and `POST /execute`'s when it has none; per token or address",
    ),
    "CALC_JOB_TTL_SECONDS": Variable(
        "job_ttl_seconds", _int, "`86400`", "how long a job is kept in Redis"
    ),
    "CALC_JOB_WALL_SECONDS": Variable(
        "job_wall_seconds",
        _float,
        "`10`",
        "a job's wall-clock limit when its request gives no `timeout`",
    ),
    "CALC_MAX_JOB_WALL_SECONDS": Variable(
        "max_job_wall_seconds", _float, "`60`", "the most a request's `timeout` may ask for"
    ),
    "CALC_QUEUE_TIMEOUT_SECONDS": Variable(
        "queue_timeout_seconds",
        _float,
        "`300`",
        "a job no worker started by then fails `NoWorker`",
    ),
    "CALC_EVALUATION_WALL_SECONDS": Variable(
        "evaluation_wall_seconds",
        _float,
        "`600`",
        "an evaluation's wall-clock limit (`POST /evaluate`'s `timeout` may ask for less)",
    ),
    "CALC_EVALUATION_CHUNK_SECONDS": Variable(
        "evaluation_chunk_seconds",
        _float,
        "`3`",
        "an evaluation chunk runs this long, then hands its unfinished symbols back to the "
        "fair queue when another user's work waits",
    ),
    "CALC_WORKER_PROCESSES": Variable(
        "worker_processes",
        _int,
        "CPU count",
        "processes each worker forks (its `--concurrency`)",
    ),
    "CALC_CLUSTER_PROCESSES": Variable(
        "cluster_processes",
        _int,
        "`CALC_WORKER_PROCESSES`",
        "every worker's processes together, for chunk planning (several machines)",
    ),
    "CALC_CHUNKS_PER_PROCESS": Variable(
        "chunks_per_process", _int, "`2`", "chunk planning: a few chunks per process"
    ),
    "CALC_MIN_CHUNK_SIZE": Variable(
        "min_chunk_size", _int, "`100`", "chunk planning: symbols in a chunk, at least"
    ),
    "CALC_SYMBOL_CPU_SECONDS": Variable(
        "symbol_cpu_seconds", _float, "`1`", "CPU budget per symbol"
    ),
    "CALC_CHILD_MEMORY_MB": Variable(
        "child_memory_mb", _int, "`256`", "address space a sandbox child may add"
    ),
    "CALC_BARS_CACHE_BARS": Variable(
        "bars_cache_bars",
        _int,
        "`2000000`",
        "bars each worker process keeps (windows keyed by data version)",
    ),
    "CALC_SANDBOX_CONFINEMENT": Variable(
        "sandbox_confinement",
        _confinement,
        "`strict`",
        "`strict`: no user code runs unless every kernel confinement step holds; `relaxed`: "
        "run with what the kernel allows (logged, and shown by `/health`); anything else "
        "refuses to start",
    ),
}
