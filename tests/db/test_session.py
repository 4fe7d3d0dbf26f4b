"""Engines and sessions: SQLite shared by processes, savepoints, fast failure on PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, func, select, text
from sqlalchemy.engine import make_url

from db.migrate import upgrade_to_head
from db.models import ApiToken
from db.session import (
    POSTGRES_CONNECT_TIMEOUT_SECONDS,
    engine_url,
    make_engine,
    make_session_factory,
    redact_url,
    session_scope,
)
from settings import PROJECT_ROOT


def _token_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(ApiToken)) or 0


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert (tmp_path / "new" / "dir" / "x.sqlite3").exists()
    finally:
        engine.dispose()


def test_session_scope_commits_on_success_and_rolls_back_on_error(fresh_engine: Engine) -> None:
    with session_scope(fresh_engine) as session:
        session.add(ApiToken(user_id="u", token_hash="a" * 64))
    with pytest.raises(RuntimeError), session_scope(fresh_engine) as session:
        session.add(ApiToken(user_id="u", token_hash="b" * 64))
        session.flush()
        raise RuntimeError("boom")
    assert _token_count(fresh_engine) == 1


def test_session_scope_accepts_a_session_factory(fresh_engine: Engine) -> None:
    with session_scope(make_session_factory(fresh_engine)) as session:
        session.add(ApiToken(user_id="u", token_hash="c" * 64))
    assert _token_count(fresh_engine) == 1


def test_objects_stay_readable_after_commit(fresh_engine: Engine) -> None:
    with session_scope(fresh_engine) as session:
        token = ApiToken(user_id="u", token_hash="d" * 64)
        session.add(token)
    assert token.id is not None and token.user_id == "u"  # no DetachedInstanceError


def test_a_savepoint_does_not_commit_the_outer_transaction(fresh_engine: Engine) -> None:
    # On SQLite a SAVEPOINT opened outside a transaction commits on RELEASE unless the engine
    # begins one first; the outer rollback must undo the nested work on both databases.
    session = make_session_factory(fresh_engine)()
    try:
        session.scalar(select(func.count()).select_from(ApiToken))  # a read before, as views do
        with session.begin_nested():
            session.add(ApiToken(user_id="u", token_hash="e" * 64))
        session.rollback()
    finally:
        session.close()
    assert _token_count(fresh_engine) == 0


def test_a_failed_savepoint_keeps_the_outer_work(fresh_engine: Engine) -> None:
    with session_scope(fresh_engine) as session:
        session.add(ApiToken(user_id="u", token_hash="f" * 64))
        session.flush()
        with pytest.raises(exc.IntegrityError), session.begin_nested():
            session.add(ApiToken(user_id="v", token_hash="f" * 64))
            session.flush()
        session.add(ApiToken(user_id="w", token_hash="g" * 64))
    assert _token_count(fresh_engine) == 2


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from db.models import ApiToken
    from db.session import make_engine, session_scope
    from sqlalchemy import func, select

    engine = make_engine(sys.argv[1])
    for i in range(40):
        with session_scope(engine) as session:
            # read, then write: the pattern that fails under WAL if a transaction started
            # at the read and another process committed in between
            session.scalar(select(func.count()).select_from(ApiToken))
            token_hash = f"{sys.argv[2]}-{i}".ljust(64, "x")
            session.add(ApiToken(user_id=sys.argv[2], token_hash=token_hash))
    """
)


def test_sqlite_file_shared_by_several_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    upgrade_to_head(url)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"w{n}", str(PROJECT_ROOT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    engine = make_engine(url)
    try:
        assert _token_count(engine) == 4 * 40
    finally:
        engine.dispose()


def test_postgres_unreachable_fails_fast() -> None:
    # A listener that never answers: the TCP handshake succeeds, the server never speaks.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql://nobody:secret@127.0.0.1:{port}/none")
        started = time.monotonic()
        with pytest.raises(exc.OperationalError), engine.connect():
            pass
        elapsed = time.monotonic() - started
        engine.dispose()
    assert POSTGRES_CONNECT_TIMEOUT_SECONDS - 0.5 <= elapsed < POSTGRES_CONNECT_TIMEOUT_SECONDS + 3


def test_postgres_engine_survives_a_server_side_disconnect(
    postgres_url: str, drop_pooled_connection
) -> None:
    engine = make_engine(postgres_url)
    try:
        drop_pooled_connection(engine)
        with engine.connect() as connection:  # the dead pooled connection is replaced
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_redact_url_hides_the_password() -> None:
    assert "secret" not in redact_url("postgresql://u:secret@h/db")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_urls_as_users_write_them_use_the_shipped_driver(
    scheme: str, postgres_url: str
) -> None:
    url = make_url(postgres_url).set(drivername=scheme).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()


def test_engine_url_leaves_other_urls_as_written() -> None:
    assert engine_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"
    assert engine_url("postgres+pg8000://u@h/db").drivername == "postgresql+pg8000"
    assert engine_url("sqlite:///x.db").drivername == "sqlite"
