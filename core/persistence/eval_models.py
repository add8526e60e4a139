"""The Evals API's tables (core.evals): evals, their runs, and each run's output items.

A run's aggregates (result_counts, per-criterion and per-model counts) are updated in the same
transaction that inserts each output item, so they always agree with the items stored, and a
run resumed by another worker (after its lease expired) carries on from where they stop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.persistence.models import Base, Timestamp, utcnow


class Eval(Base):
    __tablename__ = "evals"
    __table_args__ = (Index("ix_evals_org_created", "organization_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(256))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    data_source_config: Mapped[dict[str, Any]]
    """As the client gave it (type, item_schema, include_sample_schema)."""
    testing_criteria: Mapped[list[Any]]
    """As the client gave them, pass_threshold included."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class EvalRun(Base):
    __tablename__ = "eval_runs"
    __table_args__ = (
        Index("ix_eval_runs_eval_created", "eval_id", "created_at"),
        Index("ix_eval_runs_org_status", "organization_id", "status"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eval_id: Mapped[str] = mapped_column(ForeignKey("evals.id", ondelete="CASCADE"))
    organization_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256))
    model: Mapped[str | None] = mapped_column(String(512))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    data_source: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """queued, in_progress, completed, failed, canceled."""
    error: Mapped[dict[str, Any] | None]
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    result_counts: Mapped[dict[str, Any]]
    per_testing_criteria_results: Mapped[dict[str, Any]]
    """criterion name → {passed, failed}."""
    per_model_usage: Mapped[dict[str, Any]]
    """model → {invocation_count, prompt_tokens, completion_tokens, total_tokens, ...}."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    enqueued_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class EvalOutputItem(Base):
    __tablename__ = "eval_output_items"
    __table_args__ = (UniqueConstraint("run_id", "item_index", name="uq_eval_output_items_row"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    eval_id: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str] = mapped_column(String(64))
    item_index: Mapped[int] = mapped_column(Integer)
    """OpenAI's datasource_item_id: the row's position in the run's source."""
    status: Mapped[str] = mapped_column(String(8))
    """pass, fail or error."""
    datasource_item: Mapped[dict[str, Any]]
    results: Mapped[list[Any]]
    sample: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
