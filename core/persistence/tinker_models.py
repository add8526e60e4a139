"""Tables of the Tinker-compatible training API (core.tinker).

Postgres is the source of truth: the API writes sessions, training clients ("models") and
requests; a trainer process (worker.tinker_trainer) claims models, applies their requests in
`seq_id` order and writes each result back into its request row, where `retrieve_future` finds
it. A request row IS the Tinker future. No foreign keys to other Lathe tables beyond the
organization, so deleting a session never waits on anything else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.persistence.models import Base, Timestamp, utcnow


class TinkerSession(Base):
    """One `tinker.ServiceClient`; its heartbeat keeps its training clients alive."""

    __tablename__ = "tinker_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    user_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TinkerModel(Base):
    """A training client: a LoRA (and its AdamW state) held in memory by one trainer.

    `worker`/`lease_until`: which trainer holds it, renewed every few seconds; a lapsed lease
    means that trainer died and the in-memory weights are gone (only saved states survive)."""

    __tablename__ = "tinker_models"
    id: Mapped[str] = mapped_column(String(160), primary_key=True)  # "{session}:train:{n}"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    base_model: Mapped[str] = mapped_column(String(256))
    lora: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|ready|failed|released
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    applied_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TinkerRequest(Base):
    """A Tinker future: the request as received, then its result (proto or JSON bytes) or
    its error. `dedupe` is unique: the SDK re-sends the same (model, seq_id) after a
    transport error and must get the original request id back."""

    __tablename__ = "tinker_requests"
    __table_args__ = (Index("ix_tinker_requests_pending", "status", "model_id", "seq_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    dedupe: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[str | None] = mapped_column(String(160))
    sampler_id: Mapped[str | None] = mapped_column(String(64))
    seq_id: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_type: Mapped[str | None] = mapped_column(String(16))  # proto|json
    error: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(16))  # user|server
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class TinkerCheckpoint(Base):
    """A saved state (`weights`, LoRA + AdamW) or sampler weights (`sampler_weights`, LoRA
    only), addressed as `tinker://{model_id}/{kind}/{name}`; bytes in storage."""

    __tablename__ = "tinker_checkpoints"
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    model_id: Mapped[str] = mapped_column(String(160), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    base_model: Mapped[str] = mapped_column(String(256))
    lora: Mapped[dict[str, Any]] = mapped_column()
    storage_key: Mapped[str] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)


class TinkerSampler(Base):
    """A sampling session: a base model, or a base plus sampler weights (a checkpoint path,
    or an unnamed snapshot taken by `save_weights_and_get_sampling_client`)."""

    __tablename__ = "tinker_samplers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    session_id: Mapped[str] = mapped_column(String(64))
    base_model: Mapped[str] = mapped_column(String(256))
    model_path: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
