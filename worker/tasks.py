"""Celery tasks: thin wrappers that hand a job id to `core.jobs.runner`."""

from __future__ import annotations

import socket

from core.settings import get_settings
from worker.celery_app import RUN_JOB, app


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> None:
    from core.jobs.runner import run_job as run

    run(get_settings(), job_id, worker=socket.gethostname())
