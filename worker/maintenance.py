"""The deployment's maintenance loops: the reconciler, the storage cleanup, webhook delivery.

Every API process starts them (so the embedded default needs no other process), and each pass
first asks the deployment's leader lock (core.persistence.leader) whether this process leads:
however many API replicas run, one acts. They live here, not in the API, because they are the
queue's and the storage's housekeeping, not HTTP: the reconciler re-enqueues through the
worker's Celery app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import anyio.to_thread

from core.batches.service import stale_batches
from core.cleanup import sweep
from core.drift.samples import prune_expired
from core.jobs.service import stale_jobs
from core.persistence.db import session_scope
from core.persistence.leader import Leadership
from core.persistence.models import utcnow
from core.runs.lease import expired_jobs, take_back
from core.settings import Settings
from core.storage import get_storage
from core.sweeps.service import reconcile as advance_sweeps
from core.tempdirs import temp_root
from core.webhooks.delivery import deliver_due
from worker.celery_app import enqueue_batch, enqueue_job

log = logging.getLogger("lathe.maintenance")


def start(settings: Settings, leader: Leadership) -> list[asyncio.Task]:
    """The loops as tasks of the running event loop; cancel them to stop. The cleanup runs at
    start-up too (what a killed process left); the others after their first interval."""
    loops = (
        ("reconciler", settings.maintenance.reconcile_interval_s, True, _reconcile_once),
        ("cleanup", settings.maintenance.sweep_interval_s, False, _cleanup_once),
        ("webhook delivery", settings.webhooks.poll_interval_s, True, deliver_due),
        ("eval runs", settings.maintenance.reconcile_interval_s, True, _reconcile_eval_runs),
    )
    return [
        asyncio.create_task(_repeat(name, interval, wait_first, work, settings, leader))
        for name, interval, wait_first, work in loops
    ]


async def _repeat(
    name: str,
    interval_s: float,
    wait_first: bool,
    work: Callable[[Settings], object],
    settings: Settings,
    leader: Leadership,
) -> None:
    """`work(settings)` in a worker thread every `interval_s`, while this process leads."""
    while True:
        if wait_first:
            await asyncio.sleep(interval_s)
        wait_first = True
        try:
            if await anyio.to_thread.run_sync(leader.held):
                await anyio.to_thread.run_sync(work, settings)
        except Exception:
            log.exception("%s pass failed", name)


def _reconcile_once(settings: Settings) -> int:
    """Re-enqueue jobs the database says are waiting, in case their message was lost, and
    take back running jobs whose worker stopped renewing their lease (core.runs.lease)."""
    with session_scope(settings.resolved_database_url) as session:
        jobs_ = stale_jobs(session, settings.maintenance.reconcile_after_s)
        for job in jobs_:
            job.enqueued_at = utcnow()
        lost = [
            j.id for j in expired_jobs(session) if take_back(session, j, settings.jobs.max_attempts)
        ]
    for job_id in [j.id for j in jobs_] + lost:  # after commit: a worker must see it queued
        enqueue_job(job_id)
    if jobs_:
        log.warning("re-enqueued %d waiting jobs", len(jobs_))
    if lost:
        log.warning("took back %d jobs whose worker lease expired: %s", len(lost), lost)
    for job_id in advance_sweeps(settings.resolved_database_url):  # committed trials
        enqueue_job(job_id)
    return len(jobs_) + len(lost) + _reconcile_batches(settings)


def _reconcile_batches(settings: Settings) -> int:
    """Batches whose message was lost or whose worker died mid-slice (core.batches)."""
    with session_scope(settings.resolved_database_url) as session:
        stale = stale_batches(session, settings.maintenance.reconcile_after_s)
    for batch_id, line in stale:  # after commit: a worker must see the batch as it is
        enqueue_batch(batch_id, line)
    return len(stale)


def _reconcile_eval_runs(settings: Settings) -> int:
    """Offer eval runs to the workers again: queued ones whose message may be lost (or that
    waited for their organization's share), running ones whose worker died
    (core.evals.reconcile)."""
    from core.evals.reconcile import runs_to_offer
    from worker.eval_tasks import enqueue_eval_run

    with session_scope(settings.resolved_database_url) as session:
        offered = runs_to_offer(session, settings)
    for run_id in offered:  # after commit: a worker must see it queued
        enqueue_eval_run(run_id)
    return len(offered)


def _cleanup_once(settings: Settings) -> None:
    with session_scope(settings.resolved_database_url) as session:
        sweep(
            session, get_storage(settings), settings.maintenance.sweep_after_s, temp_root(settings)
        )
        prune_expired(session, settings)  # drift samples past LATHE_DRIFT_RETENTION_DAYS
