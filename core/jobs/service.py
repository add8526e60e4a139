"""What the API does with jobs: create, read, list, cancel, pause, resume. Running them is
`runner.py`."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.prepare import check_test_split
from core.errors import InvalidRequest, NotFound
from core.files import get_file
from core.ids import new_id
from core.integrations.spec import parse as parse_integrations
from core.jobs import placement
from core.jobs.checkpoints import drop_resume_state
from core.jobs.dependencies import (
    REWARD_METHODS,
    is_job_ref,
    on_failed,
    referenced_job,
    release,
    waiting,
    waiting_message,
)
from core.jobs.events import add_event
from core.jobs.queue_share import check_queue_quota
from core.jobs.states import JobStatus, predecessors, transition
from core.jobs.teachers import check_teacher
from core.jobspec.job import AdapterSpec, JobCreate
from core.jobspec.recipe import SpecError
from core.jobspec.target_modules import check_target_modules
from core.methods import RESUMABLE, SCORES_ONLY
from core.persistence.models import Checkpoint, File, Job, JobEvent, Model, utcnow
from core.persistence.pagination import page
from core.registry import get_model, get_usable_model, local_base_model_path
from core.settings import get_settings
from core.storage import Storage


def _check_file(
    session: Session, org_id: str, file_id: str, param: str, drop_empty: bool = False
) -> File:
    """The file must be a valid dataset; with `data.drop_empty` one that failed upload checks
    is let through, since the worker re-validates it with empty rows dropped and fails the job
    naming the line if anything else is wrong."""
    row = get_file(session, org_id, file_id, param=param)
    if row.purpose != "fine-tune":
        raise InvalidRequest(f"{file_id} has purpose {row.purpose!r}, not 'fine-tune'", param=param)
    if row.status != "processed" and not (drop_empty and row.status == "error"):
        raise InvalidRequest(
            f"{file_id} is not a valid dataset: {row.status_details}",
            param=param,
            code="invalid_file",
        )
    return row


TEST_METHODS = frozenset({"supervised", "classification"})
"""Methods that evaluate on `data.test_split`: for the others a test set would only be data
taken away from training."""


def _check_test_split(body: JobCreate, training: File) -> None:
    """Fail now, not on the worker, when the test split cannot apply (the worker checks again
    after cleaning, which may leave fewer examples)."""
    if not body.data.test_split:
        return
    if body.method.type not in TEST_METHODS:
        raise InvalidRequest(
            f"data.test_split applies to {' and '.join(sorted(TEST_METHODS))} jobs, not "
            f"{body.method.type}",
            param="data.test_split",
        )
    if training.status == "processed" and training.n_examples is not None:
        check_test_split(training.n_examples, body.data.test_split)


_FAMILY = {"qlora": "lora"}
"""A QLoRA adapter is a plain LoRA: either may continue the other."""


def continued_adapter(session: Session, parent: Model, body: JobCreate) -> AdapterSpec:
    """The adapter a job continuing `parent` (an `ft:` model or checkpoint) trains.

    It is the parent's own adapter, trained further, so its structure comes from the parent's
    job; the request may omit `adapter` (or repeat its type) and may change dropout, or swap
    LoRA for QLoRA. Any other type cannot load the parent's weights: a 400 now, not a failed job.
    """
    parent_job = session.get(Job, parent.job_id) if parent.job_id else None
    if parent_job is None:
        raise InvalidRequest(f"{parent.id} has no job to continue from", param="model")
    stored = AdapterSpec.model_validate(parent_job.spec.get("adapter", {}))
    if "adapter" not in body.model_fields_set:
        return stored
    asked = body.adapter
    if _FAMILY.get(asked.type, asked.type) != _FAMILY.get(stored.type, stored.type):
        raise InvalidRequest(
            f"{parent.id} is a {stored.type} fine-tune: continue it with adapter.type "
            f"{stored.type!r} (or leave adapter out), not {asked.type!r}",
            param="adapter.type",
        )
    return stored.model_copy(update={"type": asked.type, "dropout": asked.dropout})


def _start_model(session: Session, org_id: str, body: JobCreate) -> tuple[Model, Job | None]:
    """The model the job starts from, and the job that will produce it when `model` names a
    job that has not finished (a transient row stands in for its model until then)."""
    if is_job_ref(body.model):
        dep = referenced_job(session, org_id, body.model, "model", reward_model=False)
        if dep.status != JobStatus.SUCCEEDED:
            return Model(
                id=dep.id, kind="fine_tuned", base_model=dep.base_model, job_id=dep.id
            ), dep
        body.model = dep.fine_tuned_model  # type: ignore[assignment]
    model = get_usable_model(session, org_id, body.model)  # its own, a base, or shared with it
    if model.task == "reward_model":
        raise InvalidRequest(
            f"{body.model} is a reward model: it scores text but cannot be "
            "trained to generate; use it as method.ppo/grpo.reward_model",
            param="model",
        )
    return model, None


def _check_reward(session: Session, org_id: str, body: JobCreate) -> Job | None:
    """A ppo/grpo job's reward: a parsable grader, or a reward model of the organization (or
    the job that will produce one, returned)."""
    method = body.method
    if method.type not in REWARD_METHODS:
        return None
    block = getattr(method, method.type)
    param = f"method.{method.type}"
    if block.grader is not None:
        from core.graders.check import parse_or_invalid
        from core.graders.grade import judge_models

        grader = parse_or_invalid(block.grader, f"{param}.grader")
        for judge, path in judge_models(grader):  # a judge the organization may call
            get_usable_model(session, org_id, judge, param=f"{param}.grader{path}")
        return None
    param = f"{param}.reward_model"
    if is_job_ref(block.reward_model):
        dep = referenced_job(session, org_id, block.reward_model, param, reward_model=True)
        if dep.status != JobStatus.SUCCEEDED:
            return dep
        block.reward_model = dep.fine_tuned_model
    row = get_model(session, org_id, block.reward_model, param=param)
    if row.task != "reward_model":
        raise InvalidRequest(
            f"{block.reward_model} is not a reward model (train one with "
            "method.type 'reward_model')",
            param=param,
        )
    return None


NOT_CAUSAL_LM = frozenset({"classification", "reward_model"})
"""Methods whose model is not a causal LM: the forgetting check does not apply to them."""


def _check_benchmarks(session: Session, org_id: str, body: JobCreate) -> None:
    param = "evaluation.benchmark_files"
    if body.method.type in NOT_CAUSAL_LM:
        raise InvalidRequest(
            f"benchmarks score causal LMs; a {body.method.type} job has none", param=param
        )
    for i, file_id in enumerate(body.evaluation.benchmark_files or []):
        row = get_file(session, org_id, file_id, param=f"{param}[{i}]")
        if row.purpose != "evals" or row.status != "processed":
            raise InvalidRequest(
                f"{file_id} is not a task file (upload one with purpose 'evals'): "
                f"{row.status_details or 'purpose ' + repr(row.purpose)}",
                param=f"{param}[{i}]",
            )


def _check_select_best(session: Session, org_id: str, body: JobCreate) -> None:
    """benchmark_checkpoints needs task files; select_best needs scored checkpoints and a
    task and metric the job will report."""
    from core.evaluation.benchmarks import METRICS

    options = body.evaluation
    if body.method.type == "eval" and options.benchmark_checkpoints:
        raise InvalidRequest(
            "an eval job trains nothing, so it has no checkpoints to score",
            param="evaluation.benchmark_checkpoints",
        )
    if options.benchmark_checkpoints and not (options.benchmark_files or options.evals):
        raise InvalidRequest(
            "benchmark_checkpoints scores checkpoints on evaluation.benchmark_files or "
            "evaluation.evals: add some",
            param="evaluation.benchmark_checkpoints",
        )
    if options.evals:
        _check_job_evals(session, org_id, body)
    best = options.select_best
    if best is None:
        return
    if not options.benchmark_checkpoints:
        raise InvalidRequest(
            "select_best picks among scored checkpoints: set benchmark_checkpoints to true",
            param="evaluation.select_best",
        )
    if best.task in {e.eval_id for e in options.evals or []}:
        if best.metric != "pass_rate":
            raise InvalidRequest(
                f"an eval reports pass_rate, not {best.metric}",
                param="evaluation.select_best.metric",
            )
        return
    if best.task not in (options.benchmark_files or []):
        raise InvalidRequest(
            f"{best.task} is not one of evaluation.benchmark_files or evaluation.evals",
            param="evaluation.select_best.task",
        )
    kind = get_file(session, org_id, best.task, param="evaluation.select_best.task").format
    if best.metric not in METRICS.get(kind or "", ()):
        raise InvalidRequest(
            f"a {kind} task reports {', '.join(METRICS.get(kind or '', ()))}, not {best.metric}",
            param="evaluation.select_best.metric",
        )


def _check_job_evals(session: Session, org_id: str, body: JobCreate) -> None:
    """evaluation.evals: a causal LM's fine-tune, and each eval's run checked as a run on the
    starting model would be (core.evals.service)."""
    from core.evals.service import check_job_evals
    from core.storage import get_storage

    if body.method.type == "eval" or body.method.type in NOT_CAUSAL_LM:
        raise InvalidRequest(
            f"evaluation.evals runs on a fine-tune's generated answers; a {body.method.type} "
            "job has none (evaluate a model with an eval run: POST /v1/evals/{id}/runs)",
            param="evaluation.evals",
        )
    settings = get_settings()
    entries = body.evaluation.evals or []
    check_job_evals(session, get_storage(settings), settings, org_id, entries, body.model)


def _check_eval_job(session: Session, org_id: str, body: JobCreate, model: Model) -> File:
    """An eval job trains nothing: its training_file is a task file, and training fields
    are refused rather than ignored."""
    for name in ("adapter", "data", "validation_file", "hyperparameters"):
        if name in body.model_fields_set:
            raise InvalidRequest(f"an eval job trains nothing: remove {name}", param=name)
    options = body.evaluation
    if options.general_file is not None or options.forgetting_check is True:
        raise InvalidRequest(
            "an eval job trains nothing, so there is nothing to check for forgetting",
            param="evaluation.general_file"
            if options.general_file is not None
            else "evaluation.forgetting_check",
        )
    if model.task not in (None, "causal_lm"):
        raise InvalidRequest(
            f"{model.id} is a {model.task} model: benchmarks score causal LMs", param="model"
        )
    row = get_file(session, org_id, body.training_file, param="training_file")
    if row.purpose != "evals" or row.status != "processed":
        raise InvalidRequest(
            f"an eval job's training_file is a task file (purpose 'evals'); {row.id} is not: "
            f"{row.status_details or 'purpose ' + repr(row.purpose)}",
            param="training_file",
        )
    return row


def _check_evaluation(session: Session, org_id: str, body: JobCreate) -> None:
    """`evaluation.*` fields apply to this job or are refused, naming the field."""
    if body.data.reweight_groups and body.method.type != "classification":
        raise InvalidRequest(
            "data.reweight_groups applies to classification jobs (rows with a group)",
            param="data.reweight_groups",
        )
    options = body.evaluation
    if options.benchmark_files:
        _check_benchmarks(session, org_id, body)
    _check_select_best(session, org_id, body)
    asked = options.general_file is not None or options.forgetting_check is True
    if asked and body.method.type in NOT_CAUSAL_LM:
        raise InvalidRequest(
            f"the forgetting check scores causal LMs; a {body.method.type} job has none",
            param="evaluation.general_file"
            if options.general_file is not None
            else "evaluation.forgetting_check",
        )
    if options.general_file is None:
        return
    if options.forgetting_check is False:
        raise InvalidRequest(
            "evaluation.general_file is only scored by the forgetting check, which "
            "forgetting_check=false turns off",
            param="evaluation.general_file",
        )
    _check_file(session, org_id, options.general_file, "evaluation.general_file")


def _check_targets(body: JobCreate, base_model: str) -> None:
    """adapter.target_modules against the base's modules, when its weights are here (else
    the worker checks before loading anything)."""
    targets = body.adapter.target_modules
    if isinstance(targets, str) or body.adapter.type not in ("lora", "qlora", "ia3"):
        return
    model_dir = local_base_model_path(get_settings(), base_model)
    if model_dir is None:
        return
    try:
        check_target_modules(targets, model_dir)
    except SpecError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None


def _first_status(depends_on: list[str], checked: list[File]) -> str:
    """OpenAI's sequence is validating_files → queued → running: a job whose files were all
    validated above waits for a worker as `queued` (a multi-device one's waiting_for names
    the worker size). It stays `validating_files` while it waits for other jobs (waiting_for
    names them), or while a file let through by `data.drop_empty` awaits the worker's check."""
    if depends_on or any(row.status != "processed" for row in checked):
        return JobStatus.VALIDATING_FILES.value
    return JobStatus.QUEUED.value


def create_job(session: Session, org_id: str, body: JobCreate, stage: str | None = None) -> Job:
    check_queue_quota(session, org_id, get_settings())
    parse_integrations(body.integrations_json(), get_settings())  # a 400 if one cannot work
    placement.check_spec(body)  # resources / distributed: what can run across devices
    body = body.model_copy(deep=True)  # job references are replaced by models in place
    body.method = body.resolved_method()
    model, start_dep = _start_model(session, org_id, body)
    reward_dep = _check_reward(session, org_id, body)
    check_teacher(session, org_id, body, model)
    depends_on = sorted({d.id for d in (start_dep, reward_dep) if d is not None})
    drop_empty = body.data.drop_empty
    if body.method.type in SCORES_ONLY:
        training = _check_eval_job(session, org_id, body, model)
    else:
        training = _check_file(session, org_id, body.training_file, "training_file", drop_empty)
    _check_test_split(body, training)
    _check_evaluation(session, org_id, body)
    checked = [training]
    if body.validation_file:
        checked.append(
            _check_file(session, org_id, body.validation_file, "validation_file", drop_empty)
        )
        if body.data.validation_split not in ("auto", 0):
            raise InvalidRequest(
                "give either a validation_file or data.validation_split, not both",
                param="data.validation_split",
            )
    _check_targets(body, model.base_model)
    update = {"method": body.method, "hyperparameters": None}
    if model.kind != "base" and update["method"].type in ("supervised", "distillation"):
        update["adapter"] = continued_adapter(session, model, body)
    spec = body.model_copy(update=update)
    job = Job(
        id=new_id("ftjob-"),
        organization_id=org_id,
        model=body.model,
        base_model=model.base_model,
        status=_first_status(depends_on, checked),
        spec=spec.model_dump(mode="json", exclude_none=True),
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        metadata_=body.metadata,
        result_files=[],
        enqueued_at=utcnow(),
        depends_on=depends_on or None,
        stage=stage,
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, f"Created fine-tuning job: {job.id}")
    if job.status == JobStatus.QUEUED.value:
        gpus = body.resources.gpus
        size = "" if gpus in (1, "auto") else f" for a {gpus}-GPU worker"
        add_event(session, job.id, f"Validated training files, job queued{size}")
    if (unplaced := placement.placement_note(get_settings(), body)) is not None:
        add_event(session, job.id, unplaced, level="warn", data={"gpus": body.resources.gpus})
    if depends_on:
        deps = sorted({d.id: d for d in (start_dep, reward_dep) if d is not None}.values(),
                      key=lambda d: d.id)  # fmt: skip
        add_event(
            session,
            job.id,
            waiting_message(deps),
            data={"depends_on": depends_on, "waiting_for": depends_on},
        )
    return job


def get_job(session: Session, org_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.organization_id != org_id:
        raise NotFound(f"No such fine-tuning job: {job_id}", param="fine_tuning_job_id")
    return job


def list_jobs(
    session: Session, org_id: str, after: str | None, limit: int, metadata: dict[str, str] | None
) -> tuple[list[Job], bool]:
    query = select(Job).where(Job.organization_id == org_id)
    for key, value in (metadata or {}).items():
        query = query.where(Job.metadata_[key].as_string() == value)
    cursor = get_job(session, org_id, after) if after else None
    return page(session, query, Job, cursor, limit, desc=True)


def cancel_job(session: Session, org_id: str, job_id: str, storage: Storage | None = None) -> Job:
    """Cancel in the database; a running worker sees it at its next step and stops. A paused
    job has no worker to drop its resume state, so this does (given the storage)."""
    job = get_job(session, org_id, job_id)
    was = job.status
    if not transition(session, job.id, JobStatus.CANCELLED):
        raise InvalidRequest(
            f"Job {job_id} is {job.status} and can no longer be cancelled", code="invalid_state"
        )
    add_event(session, job.id, "Fine-tuning job cancelled")
    if was == JobStatus.PAUSED and storage is not None:
        drop_resume_state(session, storage, job.id)  # its checkpoints stay servable
    on_failed(session, job.id)  # jobs waiting for its output will never get it
    session.refresh(job)
    return job


def pause_job(session: Session, org_id: str, job_id: str) -> Job:
    """Pause in the database. A running worker sees it at its next step, saves a checkpoint
    with its resume state there and exits (runner._publish); a job no worker claimed yet
    simply is not claimed. Refused, before anything moves, for methods that cannot resume
    (progress would be lost) and for jobs still waiting for other jobs' models (the release
    that fills those in only looks at waiting jobs)."""
    job = get_job(session, org_id, job_id)
    if job.status not in predecessors(JobStatus.PAUSED):
        raise InvalidRequest(
            f"Job {job_id} is {job.status} and cannot be paused", code="invalid_state"
        )
    method = (job.spec.get("method") or {}).get("type")
    if method not in RESUMABLE:
        raise InvalidRequest(
            f"{method} jobs cannot be paused: their training saves no resume state, so a "
            f"paused job would lose its progress (pausable: {', '.join(sorted(RESUMABLE))})",
            param="method.type",
            code="unsupported_method",
        )
    if waiting(job):
        raise InvalidRequest(
            f"Job {job_id} is waiting for {', '.join(job.depends_on or [])} and has not started: "
            "cancel it instead",
            code="invalid_state",
        )
    was = job.status
    if not transition(session, job.id, JobStatus.PAUSED):  # a worker finished it meanwhile
        session.refresh(job)
        raise InvalidRequest(
            f"Job {job_id} is {job.status} and cannot be paused", code="invalid_state"
        )
    if was == JobStatus.RUNNING:  # the worker says "paused at step N" once it has saved
        add_event(session, job.id, "Fine-tuning job pause requested: saving a checkpoint")
    else:
        add_event(session, job.id, "Fine-tuning job paused before it started")
    session.refresh(job)
    return job


def resume_job(session: Session, org_id: str, job_id: str) -> Job:
    """Queue a paused job again (the caller enqueues it after commit); its next run continues
    from its latest checkpoint (runner._resume_state)."""
    job = get_job(session, org_id, job_id)
    # QUEUED is also validating_files' successor: only a paused job is resumed here.
    if job.status != JobStatus.PAUSED or not transition(
        session, job.id, JobStatus.QUEUED, enqueued_at=utcnow()
    ):
        session.refresh(job)
        raise InvalidRequest(
            f"Job {job_id} is {job.status}, not paused: there is nothing to resume",
            code="invalid_state",
        )
    add_event(session, job.id, "Fine-tuning job resumed")
    session.refresh(job)
    return job


def list_events(
    session: Session, org_id: str, job_id: str, after: str | None, limit: int
) -> tuple[list[JobEvent], bool]:
    """Newest first, as OpenAI returns them; `after` is an event id."""
    get_job(session, org_id, job_id)
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after:
        cursor = session.scalar(query.where(JobEvent.id == after))
        if cursor is None:
            raise NotFound(f"No such event: {after}", param="after")
        query = query.where(JobEvent.seq < cursor.seq)
    rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def list_checkpoints(
    session: Session, org_id: str, job_id: str, after: str | None, limit: int
) -> tuple[list[Checkpoint], bool]:
    get_job(session, org_id, job_id)
    query = select(Checkpoint).where(Checkpoint.job_id == job_id)
    cursor = None
    if after:  # only this job's checkpoints: another's id must not change (or reveal) anything
        cursor = session.scalar(query.where(Checkpoint.id == after))
        if cursor is None:
            raise NotFound(f"No such checkpoint: {after}", param="after")
    return page(session, query, Checkpoint, cursor, limit, desc=True)


def stale_jobs(session: Session, older_than_s: float) -> list[Job]:
    """Jobs the database says are waiting but whose queue message may have been lost.

    A job waiting for other jobs is not runnable; it is released here if its dependencies
    finished but the hook that should have released it was lost."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    rows = session.scalars(
        select(Job).where(
            Job.status.in_([JobStatus.VALIDATING_FILES.value, JobStatus.QUEUED.value]),
            Job.enqueued_at < cutoff,
        )
    )
    return [job for job in rows if not waiting(job) or release(session, job)]
