"""`estimated_finish`: when a running job should end, from its measured step rate.

Computed when the job is read, never stored: from `started_at` (stamped each time the job
starts running, so a resumed job is measured from its resume) and the metrics events since,
whose `step` / `total_steps` the trainers report. Null until a step is reported in this run,
and for any job that is not running (queued, paused, terminal).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs.states import JobStatus
from core.persistence.models import Job, JobEvent


def _metrics_since(session: Session, job: Job, newest: bool) -> JobEvent | None:
    order = JobEvent.seq.desc() if newest else JobEvent.seq.asc()
    return session.scalars(
        select(JobEvent)
        .where(
            JobEvent.job_id == job.id,
            JobEvent.type == "metrics",
            JobEvent.created_at >= job.started_at,
        )
        .order_by(order)
        .limit(1)
    ).first()


def _step(event: JobEvent) -> tuple[int, int] | None:
    data = event.data or {}
    step, total = data.get("step"), data.get("total_steps")
    if not isinstance(step, int) or not isinstance(total, int) or step < 1:
        return None
    return step, total


def estimated_finish(session: Session, job: Job) -> datetime | None:
    """The latest step's time + (time per step in this run) x the steps left, or None. The
    run's first reported step is taken to have begun at started_at, so a resumed job's earlier
    steps do not count as done in this run's time."""
    if job.status != JobStatus.RUNNING.value or job.started_at is None:
        return None
    latest = _metrics_since(session, job, newest=True)
    first = _metrics_since(session, job, newest=False)
    if latest is None or first is None or (now := _step(latest)) is None:
        return None
    step, total = now
    start_step = (_step(first) or (1, total))[0] - 1
    done = step - start_step
    if done < 1:
        return None
    per_step = (latest.created_at - job.started_at) / done
    return latest.created_at + per_step * max(0, total - step)
