"""job leases and per-step metrics events

A running job holds a lease (`lease_expires_at`, renewed by its worker's heartbeat) and counts
its runs (`attempts`); metrics events carry their `step`, unique per job, so a resumed run
never records a step twice.

Revision ID: 0004_job_leases
Revises: 0003_job_evaluation
Create Date: 2026-12-01 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_leases"
down_revision = "0003_job_evaluation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("job_events") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), nullable=True))
    # NULLs are distinct in a unique index (Postgres and SQLite): only metrics events set step.
    op.create_index("ux_job_events_job_step", "job_events", ["job_id", "step"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_job_events_job_step", table_name="job_events")
    with op.batch_alter_table("job_events") as batch:
        batch.drop_column("step")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
        batch.drop_column("lease_expires_at")
