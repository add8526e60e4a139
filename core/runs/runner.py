"""Run one job on this worker: validate → claim → train → publish, or fail saying why.

Called with nothing but a job id (in the training process the worker's supervisor starts,
`core.runs.supervisor`); everything else comes from the database and storage, so a lost or
duplicated queue message can never run a job twice (the claim is a conditional UPDATE on the
run's `attempts`) nor lose one (the reconciler re-enqueues what the database says waits, and
takes back running jobs whose lease expired). Every database and storage operation is retried
through a transient outage (`core.retry`); the finished artifact's upload for longer
(`LATHE_UPLOAD_RETRY_S`), so training is not thrown away for a storage blip.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.data import DataError, ensure_valid, read_dataset
from core.data.examples import Example
from core.data.prepare import dropped_note, prepare
from core.errors import InvalidRequest
from core.integrations.tee import IntegrationError, TrackedReporter
from core.integrations.tee import start as start_tracking
from core.integrations.trackers import RunInfo
from core.jobs.checkpoints import download_resume_state, latest_checkpoint
from core.jobs.dependencies import on_failed, release, waiting
from core.jobs.events import add_event
from core.jobs.queue_share import fair_share
from core.jobs.states import JobStatus, transition
from core.jobspec.recipe import SpecError, TrainingContext, TrainingResult
from core.jobspec.target_modules import check_target_modules
from core.methods import SCORES_ONLY, get_method
from core.model_store import LINEAGE, ModelStore, StoredModel, write_lineage
from core.persistence.models import File, Job, Model
from core.retry import db_retry
from core.runs.context import RunContext
from core.runs.failures import JobFailure, unexpected_error
from core.runs.lease import expired, lease_until, take_back
from core.runs.post_training import download_tasks, run_checks
from core.runs.publish import publish
from core.runs.reporter import JobReporter
from core.runs.weights import detached, start_weights
from core.settings import Settings
from core.tempdirs import temp_root
from core.training import distributed
from core.training.auto import check_spec_context

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one run left for its caller: jobs to enqueue (this one's dependants once it
    succeeded), and whether it stopped to hand the job back to the queue (its worker is
    shutting down: the supervisor re-queues it)."""

    enqueue: list[str] = field(default_factory=list)
    handed_back: bool = False


def run_job(settings: Settings, job_id: str, worker: str = "worker") -> list[str]:
    """Run the job in this process; returns the ids of jobs its success made runnable (the
    caller enqueues them: core never talks to the queue)."""
    return run_attempt(settings, job_id, worker).enqueue


def run_attempt(
    settings: Settings,
    job_id: str,
    worker: str = "worker",
    *,
    attempt: int | None = None,
    hand_back: Callable[[], bool] | None = None,
) -> Outcome:
    """One run of the job, if it is runnable and (given `attempt`) still at that many runs —
    the supervisor's expectation, so a run it did not start is never taken over."""
    job = db_retry(
        settings, "job admission", lambda s: admit(s, job_id, settings.jobs.max_attempts)
    )
    if job is None or (attempt is not None and job.attempts != attempt):
        return Outcome()
    hand_back = hand_back or (lambda: False)
    with tempfile.TemporaryDirectory(prefix=f"lathe-{job_id}-", dir=temp_root(settings)) as tmp:
        try:
            run = RunContext.start(settings, job, Path(tmp))
            train, valid, test = _load_data(run)
            if hand_back():  # the worker is stopping before the job started: nothing to save
                return Outcome(handed_back=True)
            if not _claim(settings, job, worker):
                return Outcome()
            reporter = _reporter(run, hand_back)
            result, kept = _train(run, train, valid, reporter, test=test)
            if result.stopped_early and reporter.handing_back:
                return Outcome(handed_back=True)
            return Outcome(publish(run, result, extra_results=kept))
        except JobFailure as exc:
            _fail(settings, job_id, exc.error)
        except SpecError as exc:
            _fail(settings, job_id, {"code": exc.code, "message": str(exc), "param": exc.param})
        except Exception as exc:  # a bug or an environment failure: the job still says why
            if distributed.peer_lost(exc):  # another rank died: a crash of the whole run
                raise
            _fail(settings, job_id, unexpected_error(job_id, exc, settings))
    return Outcome()


def admit(session: Session, job_id: str, max_attempts: int) -> Job | None:
    """The job, detached, if a run may start on it: waiting in the queue, or running on a
    worker whose lease expired (its message redelivered after the worker died: taken back
    here as the reconciler would). None for a duplicate message, or a job already done."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    if expired(job) and take_back(session, job, max_attempts):
        session.flush()
        session.refresh(job)
    if job.status not in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED):
        return None  # finished, cancelled, paused, or another worker's: a duplicate message
    if waiting(job):  # it uses other jobs' outputs: runnable once they all succeeded
        if not release(session, job):
            return None
        session.flush()
        session.refresh(job)
    session.expunge(job)
    return job


def _reporter(run: RunContext, hand_back: Callable[[], bool]) -> JobReporter:
    settings = run.settings
    return JobReporter(
        settings.resolved_database_url,
        run.job_id,
        storage=run.storage(),
        keep_checkpoints=settings.jobs.max_checkpoints,
        retry_budget_s=settings.jobs.retry_budget_s,
        hand_back=hand_back,
        hang_at_step=_fault(run, "lathe_fault_hang_step"),
        crash_at_step=_fault(run, "lathe_fault_crash_step"),
    )


def _fault(run: RunContext, key: str) -> int | None:
    """A step number from the job's metadata, honoured only with LATHE_FAULT_INJECTION (tests)."""
    value = (run.job.metadata_ or {}).get(key) if run.settings.fault_injection else None
    return int(value) if value is not None else None


def _load_data(run: RunContext) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, validation, test) examples, each cleaning and split step a job event."""
    settings, job, spec, work = run.settings, run.job, run.spec, run.work
    if run.method in SCORES_ONLY:  # its training_file is a task file (_task_files)
        return [], [], []
    storage = run.storage()
    loaded, notes = [], []
    for param, file_id in (
        ("training_file", job.training_file),
        ("validation_file", job.validation_file),
    ):
        if file_id is None:
            loaded.append([])
            continue
        row = db_retry(settings, "file lookup", lambda s, f=file_id: detached(s, File, f))
        if row is None:
            raise JobFailure("file_not_found", f"{param} {file_id} was deleted", param)
        path = storage.download(row.storage_key, work / param / row.filename)
        report, examples = read_dataset(
            path, row.filename, method=spec.method.type, drop_empty=spec.data.drop_empty
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

    def record(session: Session) -> None:
        for note in [n for n in notes if n] + prepared.notes:
            add_event(session, job.id, note.message, level=note.level, data=note.data)

    db_retry(settings, "data events", record)
    return prepared.train, prepared.validation, prepared.test


def _claim(settings: Settings, job: Job, worker: str) -> bool:
    """validating_files → queued → running, as run number `attempts + 1`, holding a lease."""

    def validated(session: Session) -> None:
        if job.status == JobStatus.VALIDATING_FILES and transition(
            session, job.id, JobStatus.QUEUED, source=JobStatus.VALIDATING_FILES
        ):
            add_event(session, job.id, "Validated training files, job queued")

    def claim(session: Session) -> bool:
        run = job.attempts + 1
        if not fair_share(session, job) or not transition(
            session,
            job.id,
            JobStatus.RUNNING,
            when=[Job.attempts == job.attempts],
            worker=worker,
            attempts=run,
            lease_expires_at=lease_until(settings.jobs.lease_timeout_s),
        ):
            return False
        note = f" (attempt {run} of {settings.jobs.max_attempts})" if run > 1 else ""
        add_event(session, job.id, f"Fine-tuning job started on {worker}{note}")
        return True

    db_retry(settings, "job validation", validated)
    return db_retry(settings, "job claim", claim)


def _train(
    run: RunContext,
    train: list[Example],
    valid: list[Example],
    reporter: JobReporter,
    test: list[Example] | None = None,
) -> tuple[TrainingResult, list[Path]]:
    """The result, and the files the job's integrations leave to keep as results."""
    spec = run.spec
    weights = start_weights(run)
    check_spec_context(spec, weights.path)  # max_seq_length within the model's context
    if spec.adapter.type in ("lora", "qlora", "ia3"):  # before peft fails on a name
        check_target_modules(spec.adapter.target_modules, weights.path)
    tracked = _start_tracking(run, reporter)
    ctx = TrainingContext(
        job_id=run.job_id,
        spec=spec,
        seed=run.job.seed,
        base_model_path=weights.path,
        train_examples=train,
        valid_examples=valid,
        test_examples=test or [],
        output_dir=run.work / "artifact",
        work_dir=run.work,
        device=run.device,
        reporter=tracked,
        resume_from=_resume_state(run),
        parent_artifact_dir=weights.parent,
        reward_model_dirs=_reward_model_dirs(run),
        teacher_dir=_teacher_dir(run),
        task_files=_task_files(run),
    )
    ctx = distributed.share(ctx)  # several devices: the other ranks train the same context
    try:
        result = get_method(run.method)(ctx)
    except BaseException:
        tracked.finish("failed")
        raise
    kept = tracked.finish("stopped" if result.stopped_early else "succeeded")
    if result.model_task is not None:  # a model to publish: where its weights came from
        parent = weights.parent
        if parent is not None and (parent / LINEAGE).exists():  # same weights, new adapter
            shutil.copy(parent / LINEAGE, result.artifact_dir / LINEAGE)
        write_lineage(result.artifact_dir, weights.merged_from)
    run_checks(run, result, weights, reporter)
    return result, kept


def _task_files(run: RunContext) -> dict[str, Path]:
    """A scoring-only job's task files: its training_file, then evaluation.benchmark_files."""
    if run.method not in SCORES_ONLY:
        return {}
    named = {run.spec.training_file: "training_file"}
    for i, file_id in enumerate(run.spec.evaluation.benchmark_files or []):
        named.setdefault(file_id, f"evaluation.benchmark_files[{i}]")
    return download_tasks(run.settings, named, run.work)


def _start_tracking(run: RunContext, reporter: JobReporter) -> TrackedReporter:
    """The reporter the method gets: the job's, feeding the spec's integrations too."""
    job, spec = run.job, run.spec
    params = {
        "model": job.model,
        "method": spec.method.type,
        "adapter": spec.adapter.model_dump(mode="json"),
        "seed": job.seed,
    }
    info = RunInfo(job.id, job.base_model, params, run.work)
    try:
        return start_tracking(run.settings, spec.integrations_json(), info, reporter)
    except (IntegrationError, InvalidRequest) as exc:
        param = getattr(exc, "param", None)
        raise JobFailure("integration_failed", str(exc), param) from exc


def _reward_model_dirs(run: RunContext) -> tuple[Path, Path] | None:
    """(weights, artifact) of the reward model a ppo/grpo job scores with."""
    settings, spec = run.settings, run.spec
    block = getattr(spec.method, spec.method.type)
    name = getattr(block, "reward_model", None)
    if name is None:
        return None
    param = f"method.{spec.method.type}.reward_model"
    row = db_retry(settings, "model lookup", lambda s: detached(s, Model, name))
    if row is None or row.artifact_key is None or row.task != "reward_model":
        raise JobFailure("model_not_found", f"reward model {name} was deleted", param)
    stored = StoredModel.of(row)
    store = ModelStore(settings, run.storage())
    return store.base_dir(stored), store.artifact_dir(stored)


def _teacher_dir(run: RunContext) -> Path | None:
    """The merged weights of the teacher a distillation job learns from (a base as it is)."""
    settings, spec = run.settings, run.spec
    if spec.method.type != "distillation":
        return None
    name = spec.method.distillation.teacher  # type: ignore[union-attr]
    param = "method.distillation.teacher"
    row = db_retry(settings, "model lookup", lambda s: detached(s, Model, name))
    if row is None or (row.kind != "base" and row.artifact_key is None):
        raise JobFailure("model_not_found", f"teacher {name} was deleted", param)
    stored = StoredModel.of(row)
    from core.adapters import AdapterUnsupported

    try:
        return ModelStore(settings, run.storage()).merged_dir(stored)
    except AdapterUnsupported as exc:
        raise JobFailure("unsupported_model", f"teacher {name}: {exc}", param) from exc


def _resume_state(run: RunContext) -> Path | None:
    """The latest checkpoint's trainer state, when an earlier run of this job saved one."""
    settings, job_id = run.settings, run.job_id
    checkpoint = db_retry(settings, "checkpoint lookup", lambda s: _latest(s, job_id))
    if checkpoint is None:
        return None
    local = download_resume_state(run.storage(), checkpoint, run.work / "resume")
    if local is not None:
        db_retry(
            settings,
            "resume event",
            lambda s: add_event(
                s,
                job_id,
                f"Resuming from the checkpoint at step {checkpoint.step}",
                data={"step": checkpoint.step},
            ),
        )
    return local


def _latest(session: Session, job_id: str):
    checkpoint = latest_checkpoint(session, job_id)
    if checkpoint is not None:
        session.expunge(checkpoint)
    return checkpoint


def _fail(settings: Settings, job_id: str, error: dict) -> None:
    def fail(session: Session) -> None:
        if transition(session, job_id, JobStatus.FAILED, error=error):
            add_event(session, job_id, f"Fine-tuning job failed: {error['message']}", level="error")
            on_failed(session, job_id)  # jobs waiting for its output fail, naming it

    db_retry(settings, "job failure", fail)
