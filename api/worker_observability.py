"""What `lathe worker` adds around Celery: the metrics exporter and job-tagged log lines.

Celery's task signals run in the worker's thread just before and after each task body (the
solo pool), so the job id bound at prerun is on every line the job logs, from any library.
"""

from __future__ import annotations

from typing import Any

from core.logging_setup import job_fields, set_fields
from core.observability import serve_worker_metrics
from core.settings import Settings


def install(settings: Settings) -> None:
    from celery.signals import task_postrun, task_prerun

    def bind_job(*, args: tuple[Any, ...] = (), **_: Any) -> None:
        if args:
            set_fields(job_fields(settings.resolved_database_url, str(args[0])))

    def unbind(**_: Any) -> None:
        set_fields({})

    task_prerun.connect(bind_job, weak=False)
    task_postrun.connect(unbind, weak=False)
    serve_worker_metrics(settings)
