"""Migrations: one head, a full round trip on both databases, and models that match them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.migrate import downgrade_to, heads, upgrade_to_head
from db.models import Base
from db.session import make_engine
from settings import PROJECT_ROOT

APP_TABLES = {
    "custom_scripts",
    "script_runs",
    "executions",
    "api_tokens",
    "stock_info",
    "stock_daily_data",
    "stock_data_versions",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_there_is_exactly_one_head() -> None:
    assert len(heads()) == 1


def test_upgrade_downgrade_upgrade_round_trip(empty_url: str) -> None:
    upgrade_to_head(empty_url)
    assert _tables(empty_url) == APP_TABLES | {"alembic_version"}

    downgrade_to(empty_url, "base")
    assert _tables(empty_url) == {"alembic_version"}

    upgrade_to_head(empty_url)
    upgrade_to_head(empty_url)  # already at head: a no-op, not an error
    assert _tables(empty_url) == APP_TABLES | {"alembic_version"}


def test_models_and_migrations_agree(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'calc.sqlite3'}"
    upgrade_to_head(url)
    assert (tmp_path / "a" / "b" / "calc.sqlite3").exists()


def test_alembic_command_line_takes_the_url_as_an_x_argument(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    base = [sys.executable, "-m", "alembic", "-c", str(PROJECT_ROOT / "db" / "alembic.ini")]
    upgrade = subprocess.run(
        [*base, "-x", f"url={url}", "upgrade", "head"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # the ini must not depend on the working directory
    )
    assert upgrade.returncode == 0, upgrade.stderr
    current = subprocess.run(
        [*base, "-x", f"url={url}", "current"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert heads()[0] in current.stdout
    assert _tables(url) == APP_TABLES | {"alembic_version"}


def test_runs_stored_before_0002_take_their_code_sha256_from_the_audit_row(
    empty_url: str,
) -> None:
    from sqlalchemy import text

    upgrade_to_head(empty_url)
    downgrade_to(empty_url, "0001")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO executions (job_id, user_id, script_id, code_sha256,"
                    " symbol_count, status, error_count, created_at, source) VALUES"
                    " ('j1', NULL, 1, :sha, 1, 'completed', 0, CURRENT_TIMESTAMP, 'api')"
                ),
                {"sha": "ab" * 32},
            )
            connection.execute(
                text(
                    "INSERT INTO custom_scripts (id, name, code, owner_key, created_at,"
                    " updated_at) VALUES (1, 's', 'result = 1', '', CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO script_runs (script_id, job_id, source, status, finished_at,"
                    " results, errors) VALUES (1, 'j1', 'api', 'completed', CURRENT_TIMESTAMP,"
                    " '{}', '{}')"
                )
            )
        upgrade_to_head(empty_url)
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT code_sha256 FROM script_runs")).scalar()
        assert stored == "ab" * 32
    finally:
        engine.dispose()
