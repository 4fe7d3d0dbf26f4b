"""Every setting of the service, read from the environment in one place.

Only the two entry points (``api.create_app`` and ``celeryconfig``) call
``Settings.from_env()``; everything below them receives plain values.
"""

from __future__ import annotations

import os
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


def _auth(env: dict[str, str]) -> str:
    raw = (env.get("CALC_AUTH") or "").strip().lower()
    if raw in AUTH_REQUIRED_SPELLINGS:
        return "required"
    if raw in AUTH_OFF_SPELLINGS:
        return "off"
    raise SettingsError(
        f"CALC_AUTH must be one of {', '.join(AUTH_REQUIRED_SPELLINGS)} (auth required) "
        f"or {', '.join(s for s in AUTH_OFF_SPELLINGS if s)} or empty (auth off), "
        f"not {env.get('CALC_AUTH')!r}"
    )


# CALC_SANDBOX_CONFINEMENT: what a worker does when the kernel refuses a confinement step of
# its sandbox children (sandbox/confine.py). Fails closed as CALC_AUTH does.
CONFINEMENT_MODES = ("strict", "relaxed")


def _confinement(env: dict[str, str]) -> str:
    raw = (env.get("CALC_SANDBOX_CONFINEMENT") or "").strip().lower()
    if raw == "":
        return "strict"
    if raw in CONFINEMENT_MODES:
        return raw
    raise SettingsError(
        f"CALC_SANDBOX_CONFINEMENT must be strict (the default: no user code runs unless every "
        f"confinement step holds) or relaxed, not {env.get('CALC_SANDBOX_CONFINEMENT')!r}"
    )


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _switch(env: dict[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, not {raw!r}")


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """The service's configuration; immutable so nothing can drift after start-up."""

    database_url: str = DEFAULT_SQLITE_URL
    market_data_url: str = ""  # empty: the same database as database_url
    redis_url: str = "redis://127.0.0.1:6379/0"
    auth: str = "off"  # "off" or "required"
    log_level: str = "INFO"

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
    api_active_requests: int = 4  # requests of one API process running at once (api/slots.py)

    # Jobs.
    job_ttl_seconds: int = 24 * 3600
    job_wall_seconds: float = 10.0  # default wall-clock limit of a job, from its first chunk
    queue_timeout_seconds: float = 300.0  # a job no worker started by then fails (NoWorker)
    max_job_wall_seconds: float = 60.0  # a request may ask for less, never more
    evaluation_wall_seconds: float = 600.0  # an evaluation's limit; a request may ask for less
    worker_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
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

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); unknown keys are ignored."""
        env = dict(os.environ if env is None else env)
        base = cls()
        return cls(
            database_url=env.get("DATABASE_URL") or base.database_url,
            market_data_url=env.get("MARKET_DATA_URL", ""),
            redis_url=env.get("REDIS_URL") or base.redis_url,
            auth=_auth(env),
            log_level=env.get("CALC_LOG_LEVEL") or base.log_level,
            max_code_bytes=_int(env, "CALC_MAX_CODE_BYTES", base.max_code_bytes),
            max_body_bytes=_int(env, "CALC_MAX_BODY_BYTES", base.max_body_bytes),
            max_active_jobs=_int(env, "CALC_MAX_ACTIVE_JOBS", base.max_active_jobs),
            max_backlog_symbols=_int(env, "CALC_MAX_BACKLOG_SYMBOLS", base.max_backlog_symbols),
            rate_limit_execute=env.get("CALC_RATE_LIMIT_EXECUTE") or base.rate_limit_execute,
            rate_limit_default=env.get("CALC_RATE_LIMIT_DEFAULT") or base.rate_limit_default,
            api_active_requests=_int(env, "CALC_API_ACTIVE_REQUESTS", base.api_active_requests),
            job_ttl_seconds=_int(env, "CALC_JOB_TTL_SECONDS", base.job_ttl_seconds),
            job_wall_seconds=_float(env, "CALC_JOB_WALL_SECONDS", base.job_wall_seconds),
            queue_timeout_seconds=_float(
                env, "CALC_QUEUE_TIMEOUT_SECONDS", base.queue_timeout_seconds
            ),
            max_job_wall_seconds=_float(
                env, "CALC_MAX_JOB_WALL_SECONDS", base.max_job_wall_seconds
            ),
            evaluation_wall_seconds=_float(
                env, "CALC_EVALUATION_WALL_SECONDS", base.evaluation_wall_seconds
            ),
            worker_processes=_int(env, "CALC_WORKER_PROCESSES", base.worker_processes),
            chunks_per_process=_int(env, "CALC_CHUNKS_PER_PROCESS", base.chunks_per_process),
            min_chunk_size=_int(env, "CALC_MIN_CHUNK_SIZE", base.min_chunk_size),
            symbol_cpu_seconds=_float(env, "CALC_SYMBOL_CPU_SECONDS", base.symbol_cpu_seconds),
            child_memory_mb=_int(env, "CALC_CHILD_MEMORY_MB", base.child_memory_mb),
            bars_cache_bars=_int(env, "CALC_BARS_CACHE_BARS", base.bars_cache_bars),
            sandbox_confinement=_confinement(env),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use it)."""
        return replace(self, **changes)
