"""Run one job on this worker: validate → claim → train → publish, or fail saying why.

Called by the Celery task with nothing but a job id; everything else comes from the database
and storage, so a lost or duplicated queue message can never run a job twice (the claim is a
conditional UPDATE) nor lose one (the reconciler re-enqueues what the database says waits).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from core.data import DataError, ensure_valid, read_dataset
from core.data.examples import Example
from core.data.prepare import dropped_note, prepare
from core.errors import InvalidRequest
from core.files import store_local_file
from core.jobs.checkpoints import (
    download_resume_state,
    drop_resume_state,
    fine_tuned_model_name,
    latest_checkpoint,
)
from core.jobs.dependencies import on_failed, on_succeeded, release, waiting
from core.jobs.events import add_event
from core.jobs.fairness import fair_share
from core.jobs.reporter import JobReporter
from core.jobs.results import loss_curve_png, step_metrics_csv
from core.jobs.spec import JobCreate
from core.jobs.states import JobStatus, transition
from core.methods import MERGED_START, get_method
from core.methods.base import SpecError, TrainingContext, TrainingResult
from core.model_store import LINEAGE, ModelStore, StoredModel, write_lineage
from core.persistence.db import session_scope
from core.persistence.models import File, Job, Model
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage, get_storage, put_dir
from core.training.auto import check_spec_context

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


def run_job(settings: Settings, job_id: str, worker: str = "worker") -> list[str]:
    """Run the job; returns the ids of jobs its success made runnable (the caller enqueues
    them: core never talks to the queue)."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        if job is None or job.status not in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED):
            return []  # finished, cancelled, or another worker's: a duplicate message
        if waiting(job):  # it uses other jobs' outputs: runnable once they all succeeded
            if not release(session, job):
                return []
            session.flush()
            session.refresh(job)
        session.expunge(job)
    with tempfile.TemporaryDirectory(prefix=f"lathe-{job_id}-") as tmp:
        try:
            train, valid, test = _load_data(settings, job, Path(tmp))
            if not _claim(url, job, worker):
                return []
            result = _train(settings, job, train, valid, Path(tmp), test=test)
            return _publish(settings, job, result)
        except JobFailure as exc:
            _fail(url, job_id, exc.error)
        except SpecError as exc:
            _fail(url, job_id, {"code": exc.code, "message": str(exc), "param": exc.param})
        except Exception as exc:  # a bug or an environment failure: the job still says why
            _fail(url, job_id, _unexpected(job_id, exc))
    return []


def _unexpected(job_id: str, exc: Exception) -> dict:
    """The job's error for an exception no step turned into one."""
    from core.adapters import AdapterUnsupported

    if isinstance(exc, AdapterUnsupported):  # e.g. QLoRA without a 4-bit backend: no fallback
        return {"code": "unsupported_on_worker", "message": str(exc), "param": "adapter.type"}
    log.exception("job %s failed", job_id)
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}


def _load_data(
    settings: Settings, job: Job, work: Path
) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, validation, test) examples, each cleaning and split step a job event."""
    spec = JobCreate.model_validate(job.spec)
    storage = get_storage(settings)
    loaded, notes = [], []
    for param, file_id in (
        ("training_file", job.training_file),
        ("validation_file", job.validation_file),
    ):
        if file_id is None:
            loaded.append([])
            continue
        with session_scope(settings.resolved_database_url) as session:
            row = session.get(File, file_id)
            if row is None:
                raise JobFailure("file_not_found", f"{param} {file_id} was deleted", param)
            path = storage.download(row.storage_key, work / param / row.filename)
            filename = row.filename
        report, examples = read_dataset(
            path, filename, method=spec.method.type, drop_empty=spec.data.drop_empty
        )
        try:
            ensure_valid(report)
        except DataError as exc:
            raise JobFailure(f"invalid_{param}", f"{file_id}: {exc}", param) from exc
        loaded.append(examples)
        notes.append(dropped_note(report, param.replace("_", " ")))
    # Cleaning and the hold-out split change what is trained on: each step is a job event.
    try:
        prepared = prepare(
            loaded[0],
            loaded[1] if job.validation_file else None,
            seed=job.seed,
            validation_split=spec.data.validation_split,
            dedupe=spec.data.dedupe,
            test_split=spec.data.test_split,
        )
    except InvalidRequest as exc:  # e.g. too few examples left for data.test_split
        raise JobFailure("invalid_spec", exc.message, exc.param) from exc
    with session_scope(settings.resolved_database_url) as session:
        for note in [n for n in notes if n] + prepared.notes:
            add_event(session, job.id, note.message, level=note.level, data=note.data)
    return prepared.train, prepared.validation, prepared.test


def _claim(url: str, job: Job, worker: str) -> bool:
    with session_scope(url) as session:
        if job.status == JobStatus.VALIDATING_FILES and transition(
            session, job.id, JobStatus.QUEUED
        ):
            add_event(session, job.id, "Validated training files, job queued")
    with session_scope(url) as session:
        if not fair_share(session, job) or not transition(
            session, job.id, JobStatus.RUNNING, worker=worker
        ):
            return False
        add_event(session, job.id, f"Fine-tuning job started on {worker}")
    return True


def _train(
    settings: Settings,
    job: Job,
    train: list[Example],
    valid: list[Example],
    work: Path,
    test: list[Example] | None = None,
) -> TrainingResult:
    spec = JobCreate.model_validate(job.spec)
    storage = get_storage(settings)
    base_path, parent, merged_from = _start_weights(settings, storage, job, spec.method.type)
    check_spec_context(spec, base_path)  # max_seq_length within the model's context
    ctx = TrainingContext(
        job_id=job.id,
        spec=spec,
        seed=job.seed,
        base_model_path=base_path,
        train_examples=train,
        valid_examples=valid,
        test_examples=test or [],
        output_dir=work / "artifact",
        work_dir=work,
        device=resolve_device(settings),
        reporter=JobReporter(
            settings.resolved_database_url,
            job.id,
            storage=storage,
            keep_checkpoints=settings.max_checkpoints,
        ),
        resume_from=_resume_state(settings.resolved_database_url, storage, job, work),
        parent_artifact_dir=parent,
        reward_model_dirs=_reward_model_dirs(settings, storage, spec),
        teacher_dir=_teacher_dir(settings, storage, spec),
    )
    result = get_method(spec.method.type)(ctx)
    if parent is not None and (parent / LINEAGE).exists():  # same weights under the adapter
        shutil.copy(parent / LINEAGE, result.artifact_dir / LINEAGE)
    write_lineage(result.artifact_dir, merged_from)
    return result


def _start_weights(
    settings: Settings, storage: Storage, job: Job, method: str
) -> tuple[Path, Path | None, StoredModel | None]:
    """(weights to load, artifact of the `ft:` model the job continues, the `ft:` model
    merged into those weights): continuing methods get the parent's artifact, MERGED_START
    methods its merged weights."""
    if job.model == job.base_model:
        return base_model_path(settings, job.base_model), None, None
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Model, job.model)
        if row is None or row.artifact_key is None:
            raise JobFailure("model_not_found", f"{job.model} was deleted", "model")
        parent = StoredModel.of(row)
    store = ModelStore(settings, storage)
    if method in MERGED_START:
        from core.adapters import AdapterUnsupported

        try:
            return store.merged_dir(parent), None, parent
        except AdapterUnsupported as exc:
            raise JobFailure("unsupported_model", f"{job.model}: {exc}", "model") from exc
    return store.base_dir(parent), store.artifact_dir(parent), None


def _reward_model_dirs(
    settings: Settings, storage: Storage, spec: JobCreate
) -> tuple[Path, Path] | None:
    """(weights, artifact) of the reward model a ppo/grpo job scores with."""
    block = getattr(spec.method, spec.method.type)
    name = getattr(block, "reward_model", None)
    if name is None:
        return None
    param = f"method.{spec.method.type}.reward_model"
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Model, name)
        if row is None or row.artifact_key is None or row.task != "reward_model":
            raise JobFailure("model_not_found", f"reward model {name} was deleted", param)
        stored = StoredModel.of(row)
    store = ModelStore(settings, storage)
    return store.base_dir(stored), store.artifact_dir(stored)


def _teacher_dir(settings: Settings, storage: Storage, spec: JobCreate) -> Path | None:
    """The merged weights of the teacher a distillation job learns from (a base as it is)."""
    if spec.method.type != "distillation":
        return None
    name = spec.method.distillation.teacher  # type: ignore[union-attr]
    param = "method.distillation.teacher"
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Model, name)
        if row is None or (row.kind != "base" and row.artifact_key is None):
            raise JobFailure("model_not_found", f"teacher {name} was deleted", param)
        stored = StoredModel.of(row)
    from core.adapters import AdapterUnsupported

    try:
        return ModelStore(settings, storage).merged_dir(stored)
    except AdapterUnsupported as exc:
        raise JobFailure("unsupported_model", f"teacher {name}: {exc}", param) from exc


def _resume_state(url: str, storage: Storage, job: Job, work: Path) -> Path | None:
    """The latest checkpoint's trainer state, when an earlier run of this job saved one."""
    with session_scope(url) as session:
        checkpoint = latest_checkpoint(session, job.id)
        if checkpoint is None:
            return None
        local = download_resume_state(storage, checkpoint, work / "resume")
        if local is not None:
            add_event(
                session,
                job.id,
                f"Resuming from the checkpoint at step {checkpoint.step}",
                data={"step": checkpoint.step},
            )
    return local


def _publish(settings: Settings, job: Job, result: TrainingResult) -> list[str]:
    """Upload first, then record: a row never points at bytes that are not there. Returns the
    jobs waiting for this one that are now runnable."""
    storage = get_storage(settings)
    prefix = f"orgs/{job.organization_id}/models/{job.id}/artifact"
    if result.stopped_early:  # cancelled or paused: the API moved the job; nothing to publish
        with session_scope(settings.resolved_database_url) as session:
            _stopped(session, storage, job.id)
        return []
    put_dir(storage, prefix, result.artifact_dir)
    out = result.artifact_dir.parent
    with session_scope(settings.resolved_database_url) as session:
        name = fine_tuned_model_name(session, job)
        results = [
            step_metrics_csv(result.history, out / "step_metrics.csv"),
            loss_curve_png(
                result.history, out / "loss_curve.png", f"{job.id}: {name}", result.evaluation
            ),
        ]
        result_rows = [
            store_local_file(session, storage, job.organization_id, path, "fine-tune-results")
            for path in results
        ]
        session.add(
            Model(
                id=name,
                organization_id=job.organization_id,
                kind="fine_tuned",
                base_model=job.base_model,
                job_id=job.id,
                artifact_key=prefix,
                adapter_type=result.adapter_type,
                task=result.model_task,
            )
        )
        moved = transition(
            session,
            job.id,
            JobStatus.SUCCEEDED,
            fine_tuned_model=name,
            trained_tokens=result.trained_tokens,
            hyperparameters=result.hyperparameters,
            result_files=[row.id for row in result_rows],
            evaluation=result.evaluation,
        )
        if not moved:  # cancelled while saving: discard what was uploaded
            session.rollback()
            storage.delete_prefix(prefix)
            for row in result_rows:
                storage.delete_prefix(row.storage_key)
            return []
        if result.evaluation:
            add_event(
                session, job.id, _evaluation_message(result.evaluation), data=result.evaluation
            )
        add_event(session, job.id, "The job has successfully completed", data=result.final_metrics)
        drop_resume_state(session, storage, job.id)
        return on_succeeded(session, job.id)


def _stopped(session: Session, storage: Storage, job_id: str) -> None:
    """A cancelled job's resume state goes (its checkpoints stay servable); a paused one's stays
    for the resumed run, which continues from the checkpoint this run saved as it stopped.
    The status tells them apart: a pause already resumed reads queued (or running)."""
    status = session.get(Job, job_id).status  # type: ignore[union-attr]
    if status == JobStatus.CANCELLED:
        drop_resume_state(session, storage, job_id)
        return
    checkpoint = latest_checkpoint(session, job_id)
    step = checkpoint.step if checkpoint is not None else 0
    add_event(session, job_id, f"Fine-tuning job paused at step {step}", data={"step": step})


def _evaluation_message(evaluation: dict) -> str:
    """One sentence per evaluated split: validation (top-level keys) and `data.test_split`'s."""
    test = evaluation.get("test") or {}
    parts = []
    for name, prefix, result, n in (
        ("Validation", "valid", evaluation, evaluation.get("valid_examples")),
        ("Test", "test", test, test.get("examples")),
    ):
        if "base" not in result:
            continue
        base, tuned = result["base"], result["tuned"]
        loss = f"{prefix}_loss"
        text = (
            f"{name} loss {base[loss]:.4f} before → {tuned[loss]:.4f} after "
            f"fine-tuning, on {n} examples"
        )
        for metric in sorted(set(base) & set(tuned) - {loss, f"{prefix}_perplexity"}):
            text += f"; {metric} {base[metric]:.3f} → {tuned[metric]:.3f}"
        parts.append(text)
    return ". ".join(parts)


def _fail(url: str, job_id: str, error: dict) -> None:
    with session_scope(url) as session:
        if transition(session, job_id, JobStatus.FAILED, error=error):
            add_event(session, job_id, f"Fine-tuning job failed: {error['message']}", level="error")
            on_failed(session, job_id)  # jobs waiting for its output fail, naming it
