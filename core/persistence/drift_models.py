"""Drift monitoring's table: one summarised inference request of an opted-in organization.

Bounded: the prompt text is cut to LATHE_DRIFT_PROMPT_CHARS, each (organization, model) keeps
its LATHE_DRIFT_SAMPLES_PER_MODEL newest rows, and rows older than LATHE_DRIFT_RETENTION_DAYS
are deleted (core.drift.samples). No foreign keys: deleting an organization or a model deletes
its samples explicitly, and a sample never blocks either.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.persistence.models import Base, Timestamp, utcnow


class DriftSample(Base):
    __tablename__ = "drift_samples"
    __table_args__ = (Index("ix_drift_samples_org_model", "organization_id", "model_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    prompt: Mapped[str] = mapped_column(Text)
    """The prompt's text, cut to LATHE_DRIFT_PROMPT_CHARS; embedded only when a report runs."""
    prompt_chars: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_chars: Mapped[int | None] = mapped_column(Integer)
    """None for streamed answers: the API relays their bytes without reading them."""
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
