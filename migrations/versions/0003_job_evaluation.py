"""job evaluation: base vs tuned validation metrics

Revision ID: 0003_job_evaluation
Revises: 0002
Create Date: 2026-11-26 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_job_evaluation"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("evaluation", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("evaluation")
