"""Job events: OpenAI-shaped messages and metrics, appended as training goes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.ids import new_id
from core.persistence.models import JobEvent


def add_event(
    session: Session,
    job_id: str,
    message: str,
    *,
    level: str = "info",
    type: str = "message",
    data: dict[str, Any] | None = None,
    step: int | None = None,
) -> JobEvent:
    """`step` marks a metrics event's training step, unique per job (see JobReporter)."""
    event = JobEvent(
        id=new_id("ftevent-"),
        job_id=job_id,
        message=message,
        level=level,
        type=type,
        data=data,
        step=step,
    )
    session.add(event)
    return event


def metrics_message(data: dict[str, Any]) -> str:
    """OpenAI's metrics events read 'Step 3/10: training loss=1.23'."""
    step = f"Step {data['step']}/{data.get('total_steps', '?')}"
    text = f"{step}: training loss={data['train_loss']:.4f}"
    if data.get("valid_loss") is not None:
        text += f", validation loss={data['valid_loss']:.4f}"
    return text
