"""Leases: a running job belongs to the worker that keeps renewing it.

Claiming a job (queued → running) stamps `worker` (the Celery node name), a new `attempts`
count and `lease_expires_at`; the worker's supervisor renews the lease every
`LATHE_LEASE_HEARTBEAT_S`. A worker that dies (kill -9, a lost host, a hung process nobody
supervises) stops renewing: once `lease_expires_at` has passed, the reconciler, or any worker
that receives the job's redelivered message, takes the job back (running → queued) so the next
run resumes from its latest checkpoint — or fails it once it used `LATHE_MAX_ATTEMPTS` runs.

Every move is conditional on the lease (`attempts` identifies the run), so a slow worker whose
lease was taken back cannot renew it again, and the take-back loses to a renewal that landed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.jobs.dependencies import on_failed
from core.jobs.events import add_event
from core.jobs.states import JobStatus, transition
from core.persistence.models import Job, utcnow


def lease_until(timeout_s: float) -> datetime:
    return utcnow() + timedelta(seconds=timeout_s)


def renew(session: Session, job_id: str, attempt: int, timeout_s: float) -> bool:
    """Extend run `attempt`'s lease; False when the job is no longer running as that run
    (cancelled, paused, finished, or taken back after its lease expired)."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.RUNNING.value,
            Job.attempts == attempt,
        )
        .values(lease_expires_at=lease_until(timeout_s))
    )
    return result.rowcount == 1


def expired(job: Job, now: datetime | None = None) -> bool:
    """A running job whose lease ran out (or that never had one: claimed before leases)."""
    now = now or utcnow()
    if job.status != JobStatus.RUNNING.value:
        return False
    if job.lease_expires_at is None:
        return True
    return job.lease_expires_at < now


def expired_jobs(session: Session) -> list[Job]:
    now = utcnow()
    rows = session.scalars(
        select(Job).where(
            Job.status == JobStatus.RUNNING.value,
            or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
        )
    )
    return list(rows)


def take_back(session: Session, job: Job, max_attempts: int) -> bool:
    """Re-queue (True: the caller enqueues it) or fail a running job whose lease expired.

    Conditional on the run that held the lease and on the lease still being expired, so a
    heartbeat that landed meanwhile wins and two reconcilers cannot both act."""
    lost = [
        Job.attempts == job.attempts,
        or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < utcnow()),
    ]
    who = job.worker or "its worker"
    if job.attempts >= max_attempts:
        error = {
            "code": "worker_lost",
            "message": f"The job's worker ({who}) stopped responding and the job has used all "
            f"{max_attempts} of its attempts (LATHE_MAX_ATTEMPTS)",
            "param": None,
        }
        if not transition(
            session, job.id, JobStatus.FAILED, source=JobStatus.RUNNING, when=lost, error=error
        ):
            return False
        add_event(session, job.id, f"Fine-tuning job failed: {error['message']}", level="error")
        on_failed(session, job.id)
        return False
    if not transition(
        session,
        job.id,
        JobStatus.QUEUED,
        source=JobStatus.RUNNING,
        when=lost,
        enqueued_at=utcnow(),
        lease_expires_at=None,
    ):
        return False
    add_event(
        session,
        job.id,
        f"The job's worker ({who}) stopped renewing its lease: re-queued to resume from its "
        f"latest checkpoint (attempt {job.attempts + 1} of {max_attempts})",
        level="warn",
        data={"worker": job.worker, "attempts": job.attempts},
    )
    return True


def hand_back(session: Session, job_id: str, attempt: int, reason: str, *, refund: bool) -> bool:
    """A run that stops without finishing (its worker is shutting down, its training process
    crashed) gives the job back to the queue; the caller enqueues it. A graceful hand-back
    (`refund`) gives back its attempt too: it was no fault of the job's."""
    fields = {"attempts": Job.attempts - 1} if refund else {}
    moved = transition(
        session,
        job_id,
        JobStatus.QUEUED,
        source=JobStatus.RUNNING,
        when=[Job.attempts == attempt],
        enqueued_at=utcnow(),
        lease_expires_at=None,
        **fields,
    )
    if moved:
        add_event(session, job_id, reason, level="warn", data={"attempts": attempt})
    return moved
