"""Run one job on this worker: validate → claim → train → publish, or fail saying why.

Called by the Celery task with nothing but a job id; everything else comes from the database
and storage, so a lost or duplicated queue message can never run a job twice (the claim is a
conditional UPDATE) nor lose one (the reconciler re-enqueues what the database says waits).
"""

from __future__ import annotations

import csv
import logging
import tempfile
from pathlib import Path

from core.data import DataError, load_examples
from core.data.examples import Example
from core.files import store_local_file
from core.jobs.events import add_event
from core.jobs.reporter import JobReporter
from core.jobs.spec import JobCreate
from core.jobs.states import JobStatus, transition
from core.methods import get_method
from core.methods.base import TrainingContext, TrainingResult
from core.persistence.db import session_scope
from core.persistence.models import File, Job, Model, Organization
from core.registry import base_model_path
from core.settings import Settings
from core.storage import get_storage, put_dir

log = logging.getLogger(__name__)


class JobFailure(Exception):
    """A failure the job's `error` field reports to the user as is."""

    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.error = {"code": code, "message": message, "param": param}


def resolve_device(settings: Settings) -> str:
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_job(settings: Settings, job_id: str, worker: str = "worker") -> None:
    url = settings.resolved_database_url
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        if job is None or job.status not in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED):
            return  # finished, cancelled, or another worker's: a duplicate message
        session.expunge(job)
    with tempfile.TemporaryDirectory(prefix=f"lathe-{job_id}-") as tmp:
        try:
            train, valid = _load_data(settings, job, Path(tmp))
            if not _claim(url, job, worker):
                return
            result = _train(settings, job, train, valid, Path(tmp))
            _publish(settings, job, result)
        except JobFailure as exc:
            _fail(url, job_id, exc.error)
        except Exception as exc:  # a bug or an environment failure: the job still says why
            log.exception("job %s failed", job_id)
            _fail(url, job_id, {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})


def _load_data(settings: Settings, job: Job, work: Path) -> tuple[list[Example], list[Example]]:
    spec = JobCreate.model_validate(job.spec)
    storage = get_storage(settings)
    loaded = []
    for param, file_id in (("training_file", job.training_file), ("validation_file", job.validation_file)):
        if file_id is None:
            loaded.append([])
            continue
        with session_scope(settings.resolved_database_url) as session:
            row = session.get(File, file_id)
            if row is None:
                raise JobFailure("file_not_found", f"{param} {file_id} was deleted", param)
            path = storage.download(row.storage_key, work / param / row.filename)
            filename = row.filename
        try:
            loaded.append(load_examples(path, filename, method=spec.method.type)[1])
        except DataError as exc:
            raise JobFailure(f"invalid_{param}", f"{file_id}: {exc}", param) from exc
    return loaded[0], loaded[1]


def _claim(url: str, job: Job, worker: str) -> bool:
    with session_scope(url) as session:
        if job.status == JobStatus.VALIDATING_FILES and transition(session, job.id, JobStatus.QUEUED):
            add_event(session, job.id, "Validated training files, job queued")
    with session_scope(url) as session:
        if not transition(session, job.id, JobStatus.RUNNING, worker=worker):
            return False
        add_event(session, job.id, f"Fine-tuning job started on {worker}")
    return True


def _train(
    settings: Settings, job: Job, train: list[Example], valid: list[Example], work: Path
) -> TrainingResult:
    spec = JobCreate.model_validate(job.spec)
    ctx = TrainingContext(
        job_id=job.id,
        spec=spec,
        seed=job.seed,
        base_model_path=base_model_path(settings, job.base_model),
        train_examples=train,
        valid_examples=valid,
        output_dir=work / "artifact",
        work_dir=work,
        device=resolve_device(settings),
        reporter=JobReporter(settings.resolved_database_url, job.id),
    )
    return get_method(spec.method.type)(ctx)


def _results_csv(result: TrainingResult, path: Path) -> Path:
    fields = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for row in result.history:
            acc = row.get("train_mean_token_accuracy")
            writer.writerow([row.get("step"), row.get("train_loss"), acc,
                             row.get("valid_loss"), row.get("valid_mean_token_accuracy")])
    return path


def _publish(settings: Settings, job: Job, result: TrainingResult) -> None:
    """Upload first, then record: a row never points at bytes that are not there."""
    storage = get_storage(settings)
    prefix = f"orgs/{job.organization_id}/models/{job.id}/artifact"
    if result.stopped_early:
        return  # cancelled: the cancel already moved the job; nothing to publish
    put_dir(storage, prefix, result.artifact_dir)
    results = _results_csv(result, result.artifact_dir.parent / "step_metrics.csv")
    with session_scope(settings.resolved_database_url) as session:
        org = session.get(Organization, job.organization_id)
        name = f"ft:{job.base_model}:{org.name}:{job.suffix or ''}:{job.id[-8:]}"  # type: ignore[union-attr]
        results_file = store_local_file(
            session, storage, job.organization_id, results, "fine-tune-results"
        )
        session.add(Model(
            id=name, organization_id=job.organization_id, kind="fine_tuned",
            base_model=job.base_model, job_id=job.id, artifact_key=prefix,
            adapter_type=result.adapter_type,
        ))
        moved = transition(
            session, job.id, JobStatus.SUCCEEDED, fine_tuned_model=name,
            trained_tokens=result.trained_tokens, hyperparameters=result.hyperparameters,
            result_files=[results_file.id],
        )
        if not moved:  # cancelled while saving: discard what was uploaded
            session.rollback()
            storage.delete_prefix(prefix)
            storage.delete_prefix(results_file.storage_key)
            return
        add_event(session, job.id, "The job has successfully completed", data=result.final_metrics)


def _fail(url: str, job_id: str, error: dict) -> None:
    with session_scope(url) as session:
        if transition(session, job_id, JobStatus.FAILED, error=error):
            add_event(session, job_id, f"Fine-tuning job failed: {error['message']}", level="error")
