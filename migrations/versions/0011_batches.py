"""batches: OpenAI's Batch API

Revision ID: 0011_batches
Revises: 0010_evals
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_batches"
down_revision = "0010_evals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False
        ),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output_file_id", sa.String(64), nullable=True),
        sa.Column("error_file_id", sa.String(64), nullable=True),
        sa.Column("errors", json, nullable=True),
        sa.Column("metadata", json, nullable=True),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_line", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("enqueued_at", ts, nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("in_progress_at", ts, nullable=True),
        sa.Column("finalizing_at", ts, nullable=True),
        sa.Column("completed_at", ts, nullable=True),
        sa.Column("failed_at", ts, nullable=True),
        sa.Column("cancelling_at", ts, nullable=True),
        sa.Column("cancelled_at", ts, nullable=True),
        sa.Column("expires_at", ts, nullable=False),
    )
    op.create_index("ix_batches_organization_id", "batches", ["organization_id"])
    op.create_index("ix_batches_status", "batches", ["status"])


def downgrade() -> None:
    op.drop_table("batches")
