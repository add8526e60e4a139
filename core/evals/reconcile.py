"""Eval runs a worker should pick up again: queued ones whose message may be lost (or that
waited for their organization's share), and running ones whose worker stopped renewing the
lease (presumed dead: the run goes back to the queue and resumes from its stored rows)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.persistence.eval_models import EvalRun
from core.persistence.models import utcnow
from core.settings import Settings

JOB_OWNER = "job:"
"""The lease owner prefix of a fine-tuning job's own runs (core.evals.gate)."""


def runs_to_offer(session: Session, settings: Settings) -> list[str]:
    """Ids to enqueue (after the caller commits); a run out of attempts fails instead."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.maintenance.reconcile_after_s)
    offered = []
    queued = select(EvalRun).where(EvalRun.status == "queued", EvalRun.enqueued_at < stale)
    for run in session.scalars(queued.with_for_update(skip_locked=True)):
        run.enqueued_at = now
        offered.append(run.id)
    lost = select(EvalRun).where(EvalRun.status == "in_progress", EvalRun.lease_expires_at < now)
    for run in session.scalars(lost.with_for_update(skip_locked=True)):
        owner, run.lease_owner, run.lease_expires_at = run.lease_owner, None, None
        if (owner or "").startswith(JOB_OWNER):  # a job's run (core.evals.gate): no worker
            run.status, run.finished_at = "failed", now  # could answer for its weights
            run.error = {
                "code": "job_process_stopped",
                "message": "the fine-tuning job's process stopped; a retried job runs it again",
            }
            continue
        if run.attempts >= settings.jobs.max_attempts:
            run.status, run.finished_at = "failed", now
            run.error = {
                "code": "worker_lost",
                "message": f"its worker stopped {run.attempts} times; rows graded so far stay",
            }
            continue
        run.status, run.enqueued_at = "queued", now
        offered.append(run.id)
    return offered
