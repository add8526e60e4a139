"""The job state machine: the one place a job's status changes.

Every move is a conditional UPDATE (`WHERE status IN <allowed predecessors>`), so two workers
racing for a job, or a cancel racing a finish, resolve in the database: exactly one wins.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.persistence.models import Job, utcnow


class JobStatus(StrEnum):
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.VALIDATING_FILES: frozenset(
        {JobStatus.QUEUED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.PAUSED: frozenset({JobStatus.QUEUED, JobStatus.CANCELLED}),
}


def predecessors(target: JobStatus) -> set[JobStatus]:
    return {src for src, targets in TRANSITIONS.items() if target in targets}


def transition(session: Session, job_id: str, target: JobStatus, **fields: Any) -> bool:
    """Move `job_id` to `target` if its current status allows it; True if this call moved it.

    Terminal statuses stamp `finished_at`; RUNNING stamps `started_at`.
    """
    now: datetime = utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now, **fields}
    if target.terminal:
        values.setdefault("finished_at", now)
    if target is JobStatus.RUNNING:
        values.setdefault("started_at", now)
    allowed = [s.value for s in predecessors(target)]
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(allowed)).values(**values)
    )
    return result.rowcount == 1
