"""What the API does with jobs: create, read, list, cancel. Running them is `runner.py`."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound
from core.files import get_file
from core.ids import new_id
from core.jobs.events import add_event
from core.jobs.spec import JobCreate
from core.jobs.states import JobStatus, transition
from core.persistence.models import Checkpoint, Job, JobEvent, utcnow
from core.persistence.pagination import page
from core.registry import get_model


def _check_file(session: Session, org_id: str, file_id: str, param: str) -> None:
    row = get_file(session, org_id, file_id, param=param)
    if row.purpose != "fine-tune":
        raise InvalidRequest(f"{file_id} has purpose {row.purpose!r}, not 'fine-tune'", param=param)
    if row.status != "processed":
        raise InvalidRequest(
            f"{file_id} is not a valid dataset: {row.status_details}",
            param=param,
            code="invalid_file",
        )


def create_job(session: Session, org_id: str, body: JobCreate) -> Job:
    model = get_model(session, org_id, body.model)
    _check_file(session, org_id, body.training_file, "training_file")
    if body.validation_file:
        _check_file(session, org_id, body.validation_file, "validation_file")
    spec = body.model_copy(update={"method": body.resolved_method(), "hyperparameters": None})
    job = Job(
        id=new_id("ftjob-"),
        organization_id=org_id,
        model=body.model,
        base_model=model.base_model,
        status=JobStatus.VALIDATING_FILES.value,
        spec=spec.model_dump(mode="json", exclude_none=True),
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        metadata_=body.metadata,
        result_files=[],
        enqueued_at=utcnow(),
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, f"Created fine-tuning job: {job.id}")
    return job


def get_job(session: Session, org_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.organization_id != org_id:
        raise NotFound(f"No such fine-tuning job: {job_id}", param="fine_tuning_job_id")
    return job


def list_jobs(
    session: Session, org_id: str, after: str | None, limit: int, metadata: dict[str, str] | None
) -> tuple[list[Job], bool]:
    query = select(Job).where(Job.organization_id == org_id)
    for key, value in (metadata or {}).items():
        query = query.where(Job.metadata_[key].as_string() == value)
    cursor = get_job(session, org_id, after) if after else None
    return page(session, query, Job, cursor, limit, desc=True)


def cancel_job(session: Session, org_id: str, job_id: str) -> Job:
    """Cancel in the database; a running worker sees it at its next step and stops."""
    job = get_job(session, org_id, job_id)
    if not transition(session, job.id, JobStatus.CANCELLED):
        raise InvalidRequest(
            f"Job {job_id} is {job.status} and can no longer be cancelled", code="invalid_state"
        )
    add_event(session, job.id, "Fine-tuning job cancelled")
    session.refresh(job)
    return job


def list_events(
    session: Session, org_id: str, job_id: str, after: str | None, limit: int
) -> tuple[list[JobEvent], bool]:
    """Newest first, as OpenAI returns them; `after` is an event id."""
    get_job(session, org_id, job_id)
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after:
        cursor = session.scalar(query.where(JobEvent.id == after))
        if cursor is None:
            raise NotFound(f"No such event: {after}", param="after")
        query = query.where(JobEvent.seq < cursor.seq)
    rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def list_checkpoints(
    session: Session, org_id: str, job_id: str, after: str | None, limit: int
) -> tuple[list[Checkpoint], bool]:
    get_job(session, org_id, job_id)
    query = select(Checkpoint).where(Checkpoint.job_id == job_id)
    cursor = session.get(Checkpoint, after) if after else None
    return page(session, query, Checkpoint, cursor, limit, desc=True)


def stale_jobs(session: Session, older_than_s: float) -> list[Job]:
    """Jobs the database says are waiting but whose queue message may have been lost."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    return list(
        session.scalars(
            select(Job).where(
                Job.status.in_([JobStatus.VALIDATING_FILES.value, JobStatus.QUEUED.value]),
                Job.enqueued_at < cutoff,
            )
        )
    )
