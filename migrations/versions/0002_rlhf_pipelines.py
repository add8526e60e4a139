"""rlhf and pipelines: models.task, jobs.depends_on and jobs.stage

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    # Batch mode: SQLite cannot ALTER most things in place (a no-op wrapper on Postgres).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("depends_on", json, nullable=True))
        batch.add_column(sa.Column("stage", sa.String(length=64), nullable=True))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("task", sa.String(length=32), nullable=True))
    op.execute("UPDATE models SET task = 'causal_lm' WHERE task IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("task")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stage")
        batch.drop_column("depends_on")
