"""Celery tasks: thin wrappers that hand a job id to `core.runs.supervisor`."""

from __future__ import annotations

import logging
import socket
import threading

from celery.signals import worker_ready, worker_shutting_down

import core.sweeps  # noqa: F401  (registers the hook that advances sweeps: core.jobs.lifecycle)
from core.settings import get_settings
from worker.celery_app import RUN_BATCH, RUN_JOB, app, enqueue_batch, enqueue_job

_stopping = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_kwargs) -> None:
    """SIGTERM (a deploy, `docker compose stop`, a spot preemption): Celery's warm shutdown
    waits for the running task; this makes that task checkpoint and hand its job back."""
    _stopping.set()


@worker_ready.connect
def _sweep_own_temp(**_kwargs) -> None:
    """Training temp dirs a killed worker on this host left behind (the API's sweeper only sees
    its own host): removed at start-up, unless their job is still active somewhere."""
    from core.cleanup import active_jobs, sweep_temp
    from core.persistence.db import session_scope
    from core.tempdirs import temp_root

    settings = get_settings()
    try:
        with session_scope(settings.resolved_database_url) as session:
            active = active_jobs(session)
        sweep_temp(settings.maintenance.sweep_after_s, active, temp_root(settings))
    except Exception:  # never keep a worker from starting over housekeeping
        logging.getLogger(__name__).exception("temp sweep at start-up failed")


@app.task(name=RUN_JOB, bind=True)
def run_job(self, job_id: str) -> None:
    from core.runs.supervisor import supervise

    if _stopping.is_set():  # handed a message while shutting down: leave it to another worker
        enqueue_job(job_id)
        return
    node = self.request.hostname or socket.gethostname()  # the Celery node name, lathe@host
    # Jobs that were waiting for this one's model (a pipeline's next stages) can run now; or
    # this job itself, handed back on shutdown or retried after its training process crashed.
    for ready in supervise(get_settings(), job_id, node, _stopping.is_set):
        enqueue_job(ready)


@app.task(name=RUN_BATCH)
def run_batch(batch_id: str, at_line: int) -> None:
    """One slice of a batch; the next one goes to the back of the queue (worker.batches)."""
    from worker.batches import step

    if _stopping.is_set():  # shutting down: leave it to another worker
        enqueue_batch(batch_id, at_line)
        return
    following = step(get_settings(), batch_id, at_line)
    if following is not None:
        enqueue_batch(batch_id, following)
