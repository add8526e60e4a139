"""Celery tasks: thin wrappers that hand a job id to `core.jobs.supervisor`."""

from __future__ import annotations

import socket
import threading

from celery.signals import worker_shutting_down

from core.settings import get_settings
from worker.celery_app import RUN_JOB, app, enqueue_job

_stopping = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_kwargs) -> None:
    """SIGTERM (a deploy, `docker compose stop`, a spot preemption): Celery's warm shutdown
    waits for the running task; this makes that task checkpoint and hand its job back."""
    _stopping.set()


@app.task(name=RUN_JOB, bind=True)
def run_job(self, job_id: str) -> None:
    from core.jobs.supervisor import supervise

    if _stopping.is_set():  # handed a message while shutting down: leave it to another worker
        enqueue_job(job_id)
        return
    node = self.request.hostname or socket.gethostname()  # the Celery node name, lathe@host
    # Jobs that were waiting for this one's model (a pipeline's next stages) can run now; or
    # this job itself, handed back on shutdown or retried after its training process crashed.
    for ready in supervise(get_settings(), job_id, node, _stopping.is_set):
        enqueue_job(ready)
