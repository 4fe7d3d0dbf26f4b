"""Fresh databases for tests that write: each test gets its own SQLite file or PostgreSQL
database, so loader and model tests neither see nor disturb the shared sample database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from db.migrate import upgrade_to_head
from db.session import make_engine
from tests.conftest import _postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'calc.sqlite3'}"
        return
    databases = _postgres_database()
    yield next(databases)
    databases.close()


@pytest.fixture
def fresh_url(empty_url: str) -> str:
    """A migrated, empty database of each kind, for this test only."""
    upgrade_to_head(empty_url)
    return empty_url


@pytest.fixture
def fresh_engine(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database alone, for behaviour SQLite does not have."""
    databases = _postgres_database()
    url = next(databases)
    upgrade_to_head(url)
    yield url
    databases.close()


@pytest.fixture
def drop_pooled_connection(postgres_url: str) -> Callable[[Engine], None]:
    """Have the server end the connection ``engine`` holds in its pool, as a restart or an
    idle timeout would, without the engine noticing."""

    def drop(engine: Engine) -> None:
        with engine.connect() as connection:  # (the pooled one: the pool holds only it)
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        killer = make_engine(postgres_url)
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        killer.dispose()

    return drop
