"""permissions: fine-tuned models and checkpoints shared with other organizations

Revision ID: 0006_permissions_model_sharing
Revises: 0005_sweeps
Create Date: 2026-12-01 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_permissions_model_sharing"
down_revision = "0005_sweeps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_permissions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "model_id",
            sa.String(512),
            sa.ForeignKey("models.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False
        ),
        sa.Column(
            "grantee_id",
            sa.String(64),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_model_permissions_model_id", "model_permissions", ["model_id"])
    op.create_index(
        "ix_model_permissions_organization_id", "model_permissions", ["organization_id"]
    )
    op.create_index("ix_model_permissions_grantee_id", "model_permissions", ["grantee_id"])
    op.create_index(
        "ux_model_permissions_model_grantee",
        "model_permissions",
        ["model_id", "grantee_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("model_permissions")
