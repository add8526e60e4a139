"""Celery tasks: thin wrappers that hand a job id to `core.jobs.runner`."""

from __future__ import annotations

import socket

from core.settings import get_settings
from worker.celery_app import RUN_JOB, app, enqueue_job


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> None:
    from core.jobs.runner import run_job as run

    # Jobs that were waiting for this one's model (a pipeline's next stages) can run now.
    for ready in run(get_settings(), job_id, worker=socket.gethostname()):
        enqueue_job(ready)
