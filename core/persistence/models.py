"""The database tables. Postgres in production, SQLite embedded; Alembic owns the schema.

Every row belongs to an organization; queries in `core` always filter by it, so one
organization can never see another's ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back zone-aware UTC, on every database.

    SQLite (the embedded default) keeps no zone: it hands back naive datetimes, which cannot
    be compared with `utcnow()` and which `.timestamp()` would read as the host's local time.
    Converting here, once, means no caller ever converts. The DDL is `DateTime(timezone=True)`'s,
    so the migrations are unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        # SQLite stores the wall-clock digits and drops the zone: write them as UTC's.
        return None if value is None else _utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # `created_at - timedelta(...)`: the interval is bound as an interval, not as a
        # timestamp (TypeDecorator's default would run the timedelta through _utc).
        if isinstance(value, datetime):
            return self
        return self.impl.coerce_compared_value(op, value)


def _utc(value: datetime) -> datetime:
    """Naive values are UTC (Lathe writes nothing else); aware ones are converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UTCDateTime()


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    drift_monitoring: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Opted in to drift monitoring (core.drift): its inference prompts are sampled."""


class ApiKey(Base):
    """Only the SHA-256 of a key is stored; the key itself is shown once at creation."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class File(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    status_details: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(32))
    n_examples: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    model: Mapped[str] = mapped_column(String(255))
    base_model: Mapped[str] = mapped_column(String(255))
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(32), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column()
    hyperparameters: Mapped[dict[str, Any] | None] = mapped_column()
    evaluation: Mapped[dict[str, Any] | None] = mapped_column()
    """Lathe: {"base": {...}, "tuned": {...}} validation metrics before and after training."""
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64))
    suffix: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[dict[str, Any] | None] = mapped_column()
    result_files: Mapped[list[Any]] = mapped_column(default=list)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    enqueued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    worker: Mapped[str | None] = mapped_column(String(255))
    depends_on: Mapped[list[Any] | None] = mapped_column()
    """Job ids whose output this job uses (as its model or reward model); it waits for them."""
    stage: Mapped[str | None] = mapped_column(String(64))
    """Its stage name when the job was created by a pipeline request."""
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    """While running: when the worker's lease runs out unless its heartbeat renews it
    (`core.runs.lease`); the reconciler re-queues a job whose lease expired."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Runs started (claims); a run handed back on a graceful stop does not count."""


class JobEvent(Base):
    """Append-only; `seq` orders events (and paginates) without trusting clocks."""

    __tablename__ = "job_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    level: Mapped[str] = mapped_column(String(8), default="info")
    type: Mapped[str] = mapped_column(String(16), default="message")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column()
    step: Mapped[int | None] = mapped_column(Integer)
    """A metrics event's training step: unique per job, so a resumed run never repeats one."""

    __table_args__ = (
        Index("ix_job_events_job_seq", "job_id", "seq"),
        Index("ux_job_events_job_step", "job_id", "step", unique=True),
    )


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    storage_key: Mapped[str] = mapped_column(String(512))
    fine_tuned_model_checkpoint: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Model(Base):
    """Base models (organization_id NULL, synced from settings), fine-tuned ones, and the
    checkpoints of fine-tuning jobs (kind "checkpoint", `ft:...:ckpt-step-N`)."""

    __tablename__ = "models"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    base_model: Mapped[str] = mapped_column(String(255))
    job_id: Mapped[str | None] = mapped_column(String(64))
    artifact_key: Mapped[str | None] = mapped_column(String(512))
    adapter_type: Mapped[str | None] = mapped_column(String(32))
    task: Mapped[str | None] = mapped_column(String(32), default="causal_lm")
    """What the model does: `causal_lm` (generates) or `reward_model` (scores; /v1/rewards)."""
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Sweep(Base):
    """A hyperparameter search: its request, and one entry per trial (parameters, the job
    that runs it once created, whether the median rule stopped it). The trials themselves are
    ordinary jobs whose metadata names the sweep (core.sweeps.service)."""

    __tablename__ = "sweeps"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column()
    trials: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ModelPermission(Base):
    """A fine-tuned model or checkpoint of one organization shared with another (OpenAI's
    checkpoint permission; its `project_id` is the grantee organization's id). The grantee
    may serve it and fine-tune from it, nothing else (core.permissions)."""

    __tablename__ = "model_permissions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    """The owner (who shared it)."""
    grantee_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (
        Index("ux_model_permissions_model_grantee", "model_id", "grantee_id", unique=True),
    )
