"""Engines and sessions for SQLite and PostgreSQL, set up so several processes can share them.

The API (gunicorn workers) and Celery workers open the same database from many processes.
SQLite copes with that only in WAL mode with a busy timeout; PostgreSQL needs connections
checked before use (the database may have restarted) and a short connect timeout so an
outage turns into a quick 503 rather than hung requests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

# How long an SQLite writer waits for another process's write lock before "database is locked".
# Writes here are short (one job's audit row, one script); a sample market-data load holds the
# lock for about 4 s. Longer than 10 s and a request would meet gunicorn's 30 s worker timeout.
SQLITE_BUSY_TIMEOUT_SECONDS = 10
# Fail fast when PostgreSQL is unreachable: the API answers 503 instead of hanging a worker.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2
# The PostgreSQL driver we ship (requirements.txt pins psycopg2-binary). SQLAlchemy 2.1 made
# psycopg 3 the default for a bare ``postgresql://``, and never knew ``postgres://`` (Heroku's
# and libpq's spelling): URLs as users write them name no driver, so we name ours.
POSTGRES_DRIVER = "psycopg2"
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})


def engine_url(url: str | URL) -> URL:
    """``url`` as SQLAlchemy must be given it: ``postgresql://`` and ``postgres://`` (with no
    driver named) use the driver we ship; every other URL is left as written. Every engine
    of ours is made through this (``make_engine``), so it is the one place URLs are read."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in _POSTGRES_SCHEMES:
        return parsed.set(drivername=f"postgresql+{driver or POSTGRES_DRIVER}")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine tuned for the database kind; SQLite files get their directory created."""
    return _make_engine(url, sqlite_foreign_keys=True)


def _make_engine(url: str, *, sqlite_foreign_keys: bool) -> Engine:
    """``make_engine`` with a switch migrations need: SQLite batch mode must run with FKs off.

    With foreign keys on, Alembic's batch "move and copy" drops the old table, and SQLite's
    implicit ``DELETE`` on drop would cascade into child tables (deleting every script run).
    """
    parsed = engine_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_parent(parsed.database)
        engine = create_engine(
            parsed,
            hide_parameters=True,  # never a token's hash or a user's code in a log or error
            # The driver's own busy handler; the PRAGMA below sets the same for clarity.
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        _configure_sqlite(engine, foreign_keys=sqlite_foreign_keys)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args={
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
                # JIT compiling pays off for long analytical queries, not ours: on a chunk of
                # 2,000 symbols it spent 0.3 s compiling a query that then ran in 1.6 s.
                "options": "-c jit=off",
            },
        )
    else:
        engine = create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    _guard_against_fork(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit (views serialize them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine_or_factory: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error, always close."""
    factory = (
        make_session_factory(engine_or_factory)
        if isinstance(engine_or_factory, Engine)
        else engine_or_factory
    )
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _create_sqlite_parent(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    """Pragmas for many processes on one file, and savepoints that really nest.

    Transactions keep the sqlite3 driver's own timing: reads before a session's first write
    run outside a transaction and the transaction begins at the first write, so a writer
    waits for the lock (busy timeout) instead of failing on a stale read snapshot
    (SQLITE_BUSY_SNAPSHOT), which a ``BEGIN`` at the first read would risk under WAL.
    """

    @event.listens_for(engine, "savepoint")
    def _begin_before_savepoint(connection: Connection, _name: str) -> None:
        # A SAVEPOINT outside a transaction would itself open one, and its RELEASE would then
        # COMMIT it: session.begin_nested() would commit behind the caller's back.
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and not dbapi_connection.in_transaction:
            dbapi_connection.execute("BEGIN")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # WAL lets readers in other processes proceed while one process writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode and much faster than FULL.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()


def _guard_against_fork(engine: Engine) -> None:
    """Never hand a pooled connection opened in a parent process to a forked child.

    Celery's prefork pool and gunicorn fork after imports; a socket or SQLite handle shared
    by two processes corrupts both sides. Workers should still ``engine.dispose(close=False)``
    after fork; this is the backstop (SQLAlchemy's documented recipe).
    """

    @event.listens_for(engine, "connect")
    def _remember_pid(_dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _check_pid(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError("connection was opened in another process")
