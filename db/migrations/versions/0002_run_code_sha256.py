"""A saved script's run records the SHA-256 of the code it ran (API.md: ``GET
/scripts/{id}/results`` says which version of the code its results came from).

Runs stored before this revision take it from their audit row, which has always kept it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("script_runs") as batch:
        batch.add_column(sa.Column("code_sha256", sa.String(64), nullable=True))
    op.execute(
        "UPDATE script_runs SET code_sha256 = (SELECT executions.code_sha256 FROM executions"
        " WHERE executions.job_id = script_runs.job_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("script_runs") as batch:
        batch.drop_column("code_sha256")
