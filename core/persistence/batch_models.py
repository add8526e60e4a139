"""OpenAI's Batch API table: one row per batch, its state and progress.

Results are written to storage a slice at a time (`orgs/{org}/batches/{id}/part-*.jsonl`)
before `next_line` moves past them, so a worker that dies loses at most its current slice;
the finished output and error files are Files like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.persistence.models import Base, Timestamp, utcnow


class Batch(Base):
    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    """validating, in_progress, finalizing, completed, failed, cancelling, cancelled."""
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    errors: Mapped[dict[str, Any] | None] = mapped_column()
    batch_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    next_line: Mapped[int] = mapped_column(Integer, default=0)
    """Lines before this one have their results stored (in parts)."""
    parts: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    """When its next slice was last put on the queue (the reconciler's clock)."""
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    """A worker runs a slice until then; past it (a dead worker) the batch is re-enqueued."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    in_progress_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finalizing_at: Mapped[datetime | None] = mapped_column(Timestamp)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    failed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    cancelling_at: Mapped[datetime | None] = mapped_column(Timestamp)
    cancelled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
