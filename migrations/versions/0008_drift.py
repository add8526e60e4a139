"""drift: organizations opt in to drift monitoring; sampled inference requests

Revision ID: 0008_drift
Revises: 0007_webhooks
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_drift"
down_revision = "0007_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column("drift_monitoring", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "drift_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("prompt_chars", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=True),
        sa.Column("completion_chars", sa.Integer, nullable=True),
        sa.Column("completion_tokens", sa.Integer, nullable=True),
    )
    op.create_index(
        "ix_drift_samples_org_model", "drift_samples", ["organization_id", "model_id", "id"]
    )
    op.create_index("ix_drift_samples_created_at", "drift_samples", ["created_at"])


def downgrade() -> None:
    op.drop_table("drift_samples")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("drift_monitoring")
