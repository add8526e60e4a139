"""Delivery rows written in the caller's transaction: the job change and its announcement
commit together or not at all (the transactional outbox), so a crash between the two can
neither lose an event nor announce a change that was rolled back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.ids import new_id
from core.persistence.models import Checkpoint, Job, utcnow
from core.persistence.webhook_models import WebhookDelivery, WebhookEndpoint
from core.webhooks import events


def enqueue(session: Session, org_id: str, event_type: str, data: dict[str, Any]) -> int:
    """One pending delivery of a new event per subscribed endpoint; returns how many."""
    endpoints = [
        e
        for e in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.organization_id == org_id)
        )
        if event_type in (e.event_types or [])
    ]
    if not endpoints:
        return 0
    body = events.payload(event_type, data)
    now = utcnow()
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                id=new_id("whdel_"),
                organization_id=org_id,
                endpoint_id=endpoint.id,
                event_id=body["id"],
                event_type=event_type,
                payload=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(endpoints)


def job_status_changed(session: Session, job_id: str, status: str) -> None:
    """Called by the state machine (core.jobs.states.transition) after a move it made."""
    event_type = events.BY_STATUS.get(status)
    if event_type is None:
        return
    org_id = session.scalar(select(Job.organization_id).where(Job.id == job_id))
    if org_id is not None:
        enqueue(session, org_id, event_type, {"id": job_id})


def checkpoint_created(session: Session, job: Job, model_name: str, step: int) -> None:
    """Lathe's `fine_tuning.job.checkpoint.created`: OpenAI's data (`id`: the job) plus the
    checkpoint's ids as `client.fine_tuning.jobs.checkpoints.list` names them."""
    checkpoint_id = session.scalar(
        select(Checkpoint.id).where(Checkpoint.fine_tuned_model_checkpoint == model_name)
    )
    enqueue(
        session,
        job.organization_id,
        events.CHECKPOINT_CREATED,
        {
            "id": job.id,
            "fine_tuning_checkpoint_id": checkpoint_id,
            "fine_tuned_model_checkpoint": model_name,
            "step_number": step,
        },
    )
