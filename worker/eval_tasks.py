"""The Celery task that executes an eval run (core.evals.execute) on a worker."""

from __future__ import annotations

import socket

from core.settings import get_settings
from worker.celery_app import app

RUN_EVAL = "lathe.run_eval"


def enqueue_eval_run(run_id: str) -> None:
    """To the default queue: an eval run needs no GPU of its own (the model answers through
    the inference service)."""
    settings = get_settings()
    app.send_task(RUN_EVAL, args=[run_id], queue=settings.broker.queue_name)


@app.task(name=RUN_EVAL, bind=True)
def run_eval(self, run_id: str) -> None:
    from core.evals.execute import execute
    from core.evals.tools import service_tools
    from core.persistence.db import session_scope
    from core.persistence.eval_models import EvalRun

    settings = get_settings()
    with session_scope(settings.resolved_database_url) as session:
        run = session.get(EvalRun, run_id)
        org_id = None if run is None else run.organization_id
    if org_id is None:
        return
    owner = self.request.hostname or socket.gethostname()
    tools, sampler = service_tools(settings, org_id)
    execute(settings, run_id, owner, tools, sampler)
