"""Initial schema: saved scripts, their runs, the audit trail, API tokens and market data.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc_timestamp(name: str, *, nullable: bool, now_default: bool = False) -> sa.Column:
    # db.models.UTCDateTime stores this type; migrations keep to plain SQLAlchemy types.
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.current_timestamp() if now_default else None,
    )


def upgrade() -> None:
    op.create_table(
        "custom_scripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("schedule", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column("owner_key", sa.String(length=100), nullable=False),
        _utc_timestamp("created_at", nullable=False, now_default=True),
        _utc_timestamp("updated_at", nullable=False, now_default=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_scripts")),
        sa.UniqueConstraint("owner_key", "name", name=op.f("uq_custom_scripts_owner_key_name")),
    )
    op.create_table(
        "script_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _utc_timestamp("finished_at", nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.CheckConstraint("source IN ('api', 'schedule')", name=op.f("ck_script_runs_source")),
        sa.ForeignKeyConstraint(
            ["script_id"],
            ["custom_scripts.id"],
            name=op.f("fk_script_runs_script_id_custom_scripts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_runs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_script_runs_job_id")),
    )
    op.create_index(
        op.f("ix_script_runs_script_id_finished_at"), "script_runs", ["script_id", "finished_at"]
    )
    op.create_table(
        "executions",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column("script_id", sa.Integer(), nullable=True),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("symbol_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        _utc_timestamp("created_at", nullable=False),
        _utc_timestamp("started_at", nullable=True),
        _utc_timestamp("finished_at", nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.CheckConstraint("source IN ('api', 'schedule')", name=op.f("ck_executions_source")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_executions")),
    )
    op.create_index(
        op.f("ix_executions_user_id_created_at"), "executions", ["user_id", "created_at"]
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _utc_timestamp("created_at", nullable=False),
        _utc_timestamp("revoked_at", nullable=True),
        _utc_timestamp("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "stock_info",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("sector", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_stock_info")),
    )
    op.create_table(
        "stock_daily_data",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "date", name=op.f("pk_stock_daily_data")),
        # SQLite: cluster rows by (symbol, date) so a symbol's window is one range read.
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_stock_daily_data_date"), "stock_daily_data", ["date"])
    op.create_table(
        "stock_data_versions",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _utc_timestamp("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_stock_data_versions")),
    )


def downgrade() -> None:
    op.drop_table("stock_data_versions")
    op.drop_index(op.f("ix_stock_daily_data_date"), table_name="stock_daily_data")
    op.drop_table("stock_daily_data")
    op.drop_table("stock_info")
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_executions_user_id_created_at"), table_name="executions")
    op.drop_table("executions")
    op.drop_index(op.f("ix_script_runs_script_id_finished_at"), table_name="script_runs")
    op.drop_table("script_runs")
    op.drop_table("custom_scripts")
