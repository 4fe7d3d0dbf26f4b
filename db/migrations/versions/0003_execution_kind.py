"""The audit trail says each job's kind: ``execute`` or ``evaluation`` (API.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="execute"))
        batch.create_check_constraint("kind", "kind IN ('execute', 'evaluation')")


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.drop_column("kind")
