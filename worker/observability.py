"""What `lathe worker` adds around Celery: the metrics exporter and job-tagged log lines.

Celery's task signals run in the worker's thread just before and after each task body (the
solo pool), so the job id bound at prerun is on every line the job logs, from any library.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from core.logging_setup import job_fields, set_fields
from core.settings import Settings


def _multiprocess_dir(settings: Settings) -> None:
    """A fresh folder for prometheus_client's multiprocess value files, named in the
    environment before prometheus_client is imported: the training processes the worker starts
    (core.runs.supervisor) inherit it and write their step metrics there, and the worker's
    exporter adds them up (core.observability.serve_worker_metrics)."""
    folder = (settings.data_dir / "prometheus" / str(os.getpid())).resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def install(settings: Settings) -> None:
    from celery.signals import task_postrun, task_prerun

    def bind_job(*, args: tuple[Any, ...] = (), **_: Any) -> None:
        if args:
            set_fields(job_fields(settings.resolved_database_url, str(args[0])))

    def unbind(**_: Any) -> None:
        set_fields({})

    task_prerun.connect(bind_job, weak=False)
    task_postrun.connect(unbind, weak=False)
    if settings.metrics.worker_port is not None:
        _multiprocess_dir(settings)
    from core.observability import serve_worker_metrics

    serve_worker_metrics(settings)
