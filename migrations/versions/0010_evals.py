"""evals: OpenAI's Evals API (evals, eval runs, their output items)

Revision ID: 0010_evals
Revises: 0009_uploads
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_evals"
down_revision = "0009_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    js = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "evals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("metadata", js, nullable=True),
        sa.Column("data_source_config", js, nullable=False),
        sa.Column("testing_criteria", js, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    op.create_index("ix_evals_org_created", "evals", ["organization_id", "created_at"])
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "eval_id", sa.String(64), sa.ForeignKey("evals.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("model", sa.String(512), nullable=True),
        sa.Column("metadata", js, nullable=True),
        sa.Column("data_source", js, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", js, nullable=True),
        sa.Column("total_items", sa.Integer, nullable=False),
        sa.Column("result_counts", js, nullable=False),
        sa.Column("per_testing_criteria_results", js, nullable=False),
        sa.Column("per_model_usage", js, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("enqueued_at", ts, nullable=False),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", ts, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_eval_runs_eval_created", "eval_runs", ["eval_id", "created_at"])
    op.create_index("ix_eval_runs_org_status", "eval_runs", ["organization_id", "status"])
    op.create_table(
        "eval_output_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("eval_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("eval_id", sa.String(64), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("datasource_item", js, nullable=False),
        sa.Column("results", js, nullable=False),
        sa.Column("sample", js, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.UniqueConstraint("run_id", "item_index", name="uq_eval_output_items_row"),
    )


def downgrade() -> None:
    op.drop_table("eval_output_items")
    op.drop_table("eval_runs")
    op.drop_table("evals")
