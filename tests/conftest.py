"""Fixtures shared by every test package: real Redis, real PostgreSQL and SQLite.

Nothing here is mocked. PostgreSQL gets a throwaway database for the session
(created here, dropped at the end); SQLite gets a file per session under
pytest's tmp dir; Redis uses a database index kept for tests, flushed around
each test. ``TEST_POSTGRES_ADMIN_URL`` and ``TEST_REDIS_URL`` override the
local defaults.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa

from settings import PROJECT_ROOT, Settings

POSTGRES_ADMIN_URL = os.environ.get(
    # The plain form users write (no driver named): the suite runs on what they will run.
    "TEST_POSTGRES_ADMIN_URL",
    "postgresql://postgres@127.0.0.1:5432/postgres",
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"
SAMPLE_PRICES = SAMPLE_DIR / "prices.csv.gz"
SAMPLE_STOCKS = SAMPLE_DIR / "stocks.csv"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def _postgres_database() -> Iterator[str]:
    from db.session import engine_url

    admin = sa.create_engine(engine_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"calc_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """An empty, migrated database of each kind, shared by the session's tests."""
    from db.migrate import upgrade_to_head

    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "calc.sqlite3"
        url = f"sqlite:///{path}"
        upgrade_to_head(url)
        yield url
    else:
        gen = _postgres_database()
        url = next(gen)
        upgrade_to_head(url)
        yield url
        gen.close()


@pytest.fixture(scope="session")
def sample_market_data(database_url: str) -> str:
    """The shipped real sample loaded once per database; answers the database URL."""
    from db.loader import load_prices_csv, load_stocks_csv
    from db.session import make_engine, session_scope

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            load_stocks_csv(SAMPLE_STOCKS, session=session)
        with session_scope(engine) as session:
            load_prices_csv(SAMPLE_PRICES, session=session)
    finally:
        engine.dispose()
    return database_url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before and after the test."""
    client = redis_lib.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    try:
        yield TEST_REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def settings(sample_market_data: str, redis_url: str) -> Settings:
    """Settings pointing at the test database (with market data) and test Redis."""
    return Settings(database_url=sample_market_data, redis_url=redis_url)


def close_app(application) -> None:
    """Release what ``create_app`` opened (connections are not left to the garbage collector)."""
    ext = application.extensions["calc"]
    ext.redis.close()
    ext.redis.connection_pool.disconnect()
    ext.engine.dispose()
    ext.market_engine.dispose()


@pytest.fixture
def make_app():
    """``create_app`` for tests that need an app with settings of their own; closed after."""
    from api import create_app

    made = []

    def make(settings: Settings):
        application = create_app(settings)
        application.config["TESTING"] = True
        made.append(application)
        return application

    yield make
    for application in made:
        close_app(application)


def clear_saved_state(application) -> None:
    """Saved scripts, their runs and the audit trail live in the session's shared database:
    each test starts without any, whatever the tests before it saved."""
    from api.extension import db_session
    from db.models import CustomScript, Execution, ScriptRun

    with application.app_context():
        session = db_session()
        for model in (ScriptRun, Execution, CustomScript):
            session.query(model).delete()
        session.commit()


@pytest.fixture
def app(settings: Settings, make_app):
    """The real app (``create_app``) on the test database and test Redis, with no saved state."""
    application = make_app(settings)
    clear_saved_state(application)
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def celery_worker(settings: Settings):
    """A real Celery worker consuming from the test Redis, in a thread of this process.

    Not eager mode: tasks travel through the broker as JSON, exactly as in production.
    The end-to-end tests in tests/e2e start real prefork worker processes instead.
    """
    from celery.contrib.testing.worker import start_worker

    from workers.celery_app import app as celery_app
    from workers.celery_app import configure

    configure(settings)
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=15,
        loglevel="WARNING",
    ) as worker:
        yield worker
