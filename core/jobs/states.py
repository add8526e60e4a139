"""The job state machine: the one place a job's status changes.

Every move is a conditional UPDATE (`WHERE status IN <allowed predecessors>`), so two workers
racing for a job, or a cancel racing a finish, resolve in the database: exactly one wins.

    validating_files → queued → running → succeeded | failed | cancelled
    validating_files | queued | running → paused → queued (resume) | cancelled
    running → queued (the run is taken back: its lease expired, or its worker handed it back)

Pausing (the API's pause call) is allowed before a worker claims the job (validating_files,
queued: the claim then fails, nothing ran) and while it runs: the worker notices between
steps, saves a checkpoint with its resume state at that step and exits without publishing,
so no work is lost. Resume moves `paused` back to `queued` (the API enqueues it) and the next
run continues from that checkpoint. A paused job can also be cancelled. It cannot fail or
succeed: no worker owns it, and a finish racing the pause loses (the job resumes from its
latest checkpoint instead). `paused` is not terminal, but the reconciler only re-enqueues
validating_files/queued jobs, so a paused job waits for its resume call. Which jobs may pause
at all (methods that resume from checkpoints) is the service's rule (`service.pause_job`).

`running → queued` exists for faults, never for users: a run whose worker died (its lease
expired, `core.runs.lease.take_back`), whose worker is shutting down (SIGTERM: it checkpoints at
the next step and hands the job back) or whose training process crashed goes back to the queue,
and the next run resumes from the latest checkpoint. Those moves are conditional on the run
(`attempts`) as well, via `transition(..., when=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, update
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
        {JobStatus.QUEUED, JobStatus.PAUSED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.QUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.PAUSED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.SUCCEEDED,
            JobStatus.PAUSED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.QUEUED,  # taken back (lease expired) or handed back (worker stopping)
        }
    ),
    JobStatus.PAUSED: frozenset({JobStatus.QUEUED, JobStatus.CANCELLED}),
}


FAULT_ONLY = frozenset({(JobStatus.RUNNING, JobStatus.QUEUED)})
"""Moves made only when a caller names their source (`transition(..., source=...)`): a plain
`transition(job, QUEUED)` (a resume, a validated job) can never take a running job off its
worker."""


def predecessors(target: JobStatus, *, faults: bool = False) -> set[JobStatus]:
    return {
        src
        for src, targets in TRANSITIONS.items()
        if target in targets and (faults or (src, target) not in FAULT_ONLY)
    }


def transition(
    session: Session,
    job_id: str,
    target: JobStatus,
    *,
    source: JobStatus | None = None,
    when: Sequence[ColumnElement[bool]] = (),
    **fields: Any,
) -> bool:
    """Move `job_id` to `target` if its current status allows it — only from `source` when
    given (required for FAULT_ONLY moves) — and the extra `when` conditions hold (e.g. the run
    holding the lease); True if this call moved it.

    Terminal statuses stamp `finished_at`; RUNNING stamps `started_at`.
    """
    now: datetime = utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now, **fields}
    if target.terminal:
        values.setdefault("finished_at", now)
    if target is JobStatus.RUNNING:
        values.setdefault("started_at", now)
    allowed = [
        s.value
        for s in predecessors(target, faults=source is not None)
        if source is None or s is source
    ]
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(allowed), *when).values(**values)
    )
    if result.rowcount != 1:
        return False
    from core.webhooks.outbox import job_status_changed

    job_status_changed(session, job_id, target.value)  # in this transaction: never lost
    return True
