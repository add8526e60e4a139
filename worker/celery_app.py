"""The Celery application: Redis in production, a filesystem broker when embedded.

The queue only ever carries "run job X"; Postgres holds the truth. One job at a time per
worker process (one per GPU), acknowledged late so a crashed worker's job is redelivered —
the database claim makes the redelivery harmless, and the job's lease decides whether the
redelivered message may take the job over (core.runs.lease).
"""

from __future__ import annotations

from celery import Celery

from core.settings import Settings, get_settings

RUN_JOB = "lathe.run_job"
RUN_BATCH = "lathe.run_batch"


def make_celery(settings: Settings) -> Celery:
    app = Celery("lathe", broker=settings.resolved_broker_url)
    conf = {
        "task_default_queue": settings.broker.queue_name,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,  # output stays output, not celery.redirected warnings
        "broker_connection_retry_on_startup": True,
        "include": ["worker.tasks", "worker.eval_tasks"],
    }
    if settings.resolved_broker_url.startswith("filesystem://"):
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    if settings.resolved_broker_url.startswith(("redis://", "rediss://")):
        # Redis hands an unacknowledged message (acks_late: the task is acked when the job's
        # run returns) to another worker once this long has passed. The default, 1 h, would
        # bring a dead worker's job back an hour late; a value shorter than a job's run time
        # redelivers messages of jobs still running. Neither decides anything: the job's
        # lease in Postgres does. A redelivered message for a job whose lease is live is
        # dropped; one for a job whose lease expired takes the job over (as the reconciler
        # would). So the timeout only needs to be long enough not to churn messages of live
        # jobs too often, and short enough to be a backstop should the API's reconciler be
        # down: a few lease timeouts.
        conf["broker_transport_options"] = {
            "visibility_timeout": max(300.0, 5 * settings.jobs.lease_timeout_s)
        }
    app.conf.update(conf)
    return app


app = make_celery(get_settings())


def enqueue_job(job_id: str) -> None:
    """To the queue of workers of the job's size (`resources.gpus`, core.jobs.placement)."""
    from core.jobs.placement import job_queue

    settings = get_settings()
    app.send_task(RUN_JOB, args=[job_id], queue=job_queue(settings, job_id))


def enqueue_batch(batch_id: str, at_line: int) -> None:
    """A Batch API batch's slice from request `at_line` (worker.batches), on the default
    queue. A message whose batch has moved on, or is run by another worker, is dropped."""
    app.send_task(RUN_BATCH, args=[batch_id, at_line], queue=get_settings().broker.queue_name)
