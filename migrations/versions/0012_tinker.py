"""tinker: sessions, training clients, futures, checkpoints and samplers of the Tinker API

Revision ID: 0012_tinker
Revises: 0011_batches
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012_tinker"
down_revision = "0011_batches"
branch_labels = None
depends_on = None


def _org() -> sa.Column:
    return sa.Column(
        "organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False
    )


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    js = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "tinker_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        _org(),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("heartbeat_at", ts, nullable=False),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("user_metadata", js, nullable=False),
    )
    op.create_index("ix_tinker_sessions_organization_id", "tinker_sessions", ["organization_id"])
    op.create_table(
        "tinker_models",
        sa.Column("id", sa.String(160), primary_key=True),
        _org(),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("base_model", sa.String(256), nullable=False),
        sa.Column("lora", js, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.Column("applied_seq", sa.Integer, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_tinker_models_organization_id", "tinker_models", ["organization_id"])
    op.create_index("ix_tinker_models_session_id", "tinker_models", ["session_id"])
    op.create_index("ix_tinker_models_status", "tinker_models", ["status"])
    op.create_table(
        "tinker_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        _org(),
        sa.Column("dedupe", sa.String(256), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(160), nullable=True),
        sa.Column("sampler_id", sa.String(64), nullable=True),
        sa.Column("seq_id", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.LargeBinary, nullable=True),
        sa.Column("result_type", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("category", sa.String(16), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("finished_at", ts, nullable=True),
    )
    op.create_index("ix_tinker_requests_organization_id", "tinker_requests", ["organization_id"])
    op.create_index("ix_tinker_requests_created_at", "tinker_requests", ["created_at"])
    op.create_index(
        "ix_tinker_requests_pending", "tinker_requests", ["status", "model_id", "seq_id"]
    )
    op.create_table(
        "tinker_checkpoints",
        sa.Column("path", sa.String(512), primary_key=True),
        _org(),
        sa.Column("model_id", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("base_model", sa.String(256), nullable=False),
        sa.Column("lora", js, nullable=False),
        sa.Column("storage_key", sa.String(512), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=True),
    )
    op.create_index(
        "ix_tinker_checkpoints_organization_id", "tinker_checkpoints", ["organization_id"]
    )
    op.create_index("ix_tinker_checkpoints_model_id", "tinker_checkpoints", ["model_id"])
    op.create_table(
        "tinker_samplers",
        sa.Column("id", sa.String(64), primary_key=True),
        _org(),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("base_model", sa.String(256), nullable=False),
        sa.Column("model_path", sa.String(512), nullable=True),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_tinker_samplers_organization_id", "tinker_samplers", ["organization_id"])


def downgrade() -> None:
    for table in (
        "tinker_samplers",
        "tinker_checkpoints",
        "tinker_requests",
        "tinker_models",
        "tinker_sessions",
    ):
        op.drop_table(table)
