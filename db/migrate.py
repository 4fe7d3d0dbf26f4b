"""Apply the Alembic migrations from code (``flask init-db``, tests, ``seed-sample``).

The Alembic ``Config`` is built here rather than read from an ini file or the environment,
so the caller's URL is the only input and the caller's logging set-up is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from db.session import _make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number: concurrent migrators on PostgreSQL queue on it instead of racing.
_PG_MIGRATION_LOCK = 0x63616C63  # "calc"


def upgrade_to_head(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (a no-op when it is there already)."""
    _run("upgrade", url, "head")


def downgrade_to(url: str, revision: str) -> None:
    """Step the schema back to ``revision`` (``"base"`` removes every table we created)."""
    _run("downgrade", url, revision)


def heads() -> list[str]:
    """The head revisions of the migration scripts; more than one means an unmerged branch."""
    return list(ScriptDirectory.from_config(_config()).get_heads())


@contextmanager
def migration_connection(url: str) -> Iterator[Connection]:
    """A connection in a transaction, set up for migrating (also used by env.py on the CLI).

    On SQLite, foreign keys are off (batch mode recreates tables, and dropping a parent with
    FKs on would cascade-delete its children) and checked once at the end instead.
    """
    engine = _make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                )
            yield connection
            if connection.dialect.name == "sqlite":
                broken = connection.execute(text("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


def _config() -> Config:
    config = Config()
    # Config values go through ConfigParser interpolation: a '%' in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _run(action: str, url: str, revision: str) -> None:
    with migration_connection(url) as connection:
        config = _config()
        # env.py runs on this connection (and inside its transaction) instead of making its own.
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)
