"""Fair share of the workers between organizations, and the queued-jobs quota.

The Celery queue is FIFO, so one organization's 50 queued jobs would otherwise run before
anyone else's first. Two rules keep it fair: an organization may have at most
`max_queued_jobs_per_org` jobs waiting (creating more is a 429), and a worker starts a job only
while its organization has fewer than `max_running_jobs_per_org` running (`may_start`); a job
refused there stays queued, its message is dropped, and the reconciler offers it again later,
by which time the worker has taken other organizations' jobs from the queue.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import TooManyRequests
from core.jobs.states import JobStatus
from core.persistence.models import Job
from core.settings import Settings, get_settings

WAITING = (JobStatus.VALIDATING_FILES.value, JobStatus.QUEUED.value, JobStatus.PAUSED.value)
"""Statuses that count against the queued quota: unfinished and not running."""


def _count(session: Session, org_id: str, statuses: tuple[str, ...]) -> int:
    query = select(func.count(Job.id)).where(
        Job.organization_id == org_id, Job.status.in_(statuses)
    )
    return session.scalar(query) or 0


def check_queue_quota(session: Session, org_id: str, settings: Settings) -> None:
    """Before a job is created: TooManyRequests when the organization already has its quota
    of waiting jobs (counted in this session, so a pipeline's earlier stages count)."""
    waiting = _count(session, org_id, WAITING)
    if waiting >= settings.quotas.max_queued_jobs_per_org:
        raise TooManyRequests(
            f"Your organization has {waiting} fine-tuning jobs waiting to run, the most "
            f"allowed ({settings.quotas.max_queued_jobs_per_org}); wait for some to start or "
            "cancel some.",
            code="too_many_queued_jobs",
            retry_after=settings.maintenance.reconcile_interval_s,
        )


def may_start(session: Session, job: Job, settings: Settings) -> bool:
    """Whether a worker may start `job` now: no while its organization already runs its share."""
    running = _count(session, job.organization_id, (JobStatus.RUNNING.value,))
    return running < settings.quotas.max_running_jobs_per_org


def fair_share(session: Session, job: Job) -> bool:
    """`may_start` with the process's settings: the worker's claim calls this."""
    return may_start(session, job, get_settings())
