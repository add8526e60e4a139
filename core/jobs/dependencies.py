"""Jobs that use other jobs' outputs: a job id where a model id is expected.

A job may name, as its `model` or as its reward model (`method.ppo.reward_model`,
`method.grpo.reward_model`), the id of another job of the organization instead of a model id:
it means "the model that job will produce". If that job has already succeeded the id is
replaced by its model at once; otherwise the new job records it in `depends_on` and waits in
`validating_files` (it is not enqueued). The state machine moves it on:

- when a dependency succeeds (runner._publish calls `on_succeeded` in the same transaction),
  every waiting dependant whose dependencies have all succeeded gets its job ids replaced by
  the produced model ids and moves to `queued`; the caller enqueues it after commit;
- when a dependency fails or is cancelled (`on_failed`, from runner._fail and cancel_job),
  its dependants fail, transitively, with an error naming the stage that broke.

`release` is idempotent, so the reconciler can also call it for waiting jobs whose hook was
lost (e.g. a worker crash between commit and enqueue).
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, NotFound
from core.jobs.events import add_event
from core.jobs.lifecycle import job_finished
from core.jobs.states import JobStatus, transition
from core.persistence.models import Job, utcnow

JOB_PREFIX = "ftjob-"
REWARD_METHODS = ("ppo", "grpo", "reinforcement")


def is_job_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(JOB_PREFIX)


def model_fields(spec: dict[str, Any]) -> dict[str, str]:
    """Where a spec (a JobCreate dump) names models: param path → value."""
    fields = {"model": spec.get("model")}
    method = spec.get("method") or {}
    block = method.get(method.get("type")) or {}
    if method.get("type") in REWARD_METHODS and block.get("reward_model"):
        fields[f"method.{method['type']}.reward_model"] = block["reward_model"]
    return {k: v for k, v in fields.items() if v is not None}


def set_model_field(spec: dict[str, Any], param: str, value: str) -> None:
    if param == "model":
        spec["model"] = value
    else:
        _, method, _ = param.split(".")
        spec["method"][method]["reward_model"] = value


def waiting(job: Job) -> bool:
    return any(is_job_ref(v) for v in model_fields(job.spec).values())


def waiting_for(session: Session | None, job: Job) -> list[str] | None:
    """The jobs a waiting job still needs (not yet succeeded), or the size of worker a queued
    multi-device job waits for, for the job object's Lathe field `waiting_for`: a job waiting
    for jobs keeps OpenAI's `validating_files`, which clients switch on, while this says why.
    None once it no longer waits. Without a session: all it depends on."""
    gpus = (job.spec.get("resources") or {}).get("gpus", 1)
    if job.status == JobStatus.QUEUED and gpus not in (1, "auto"):
        return [f"a worker with {gpus} GPUs (lathe worker --gpus {gpus})"]
    if job.status != JobStatus.VALIDATING_FILES or not waiting(job):
        return None
    deps = job.depends_on or []
    if session is None:
        return deps
    succeeded = set(
        session.scalars(
            select(Job.id).where(Job.id.in_(deps), Job.status == JobStatus.SUCCEEDED.value)
        )
    )
    return [d for d in deps if d not in succeeded]


def waiting_message(deps: list[Job]) -> str:
    """The event a waiting job gets when it is created."""
    names = ", ".join(describe(d) for d in deps)
    return (
        f"Waiting for {names} to succeed: the job starts then (its status stays "
        "validating_files until it is queued)"
    )


def referenced_job(
    session: Session, org_id: str, job_id: str, param: str, *, reward_model: bool
) -> Job:
    """The job a new job names at `param`; 400 when its output can never serve there."""
    dep = session.get(Job, job_id)
    if dep is None or dep.organization_id != org_id:
        raise NotFound(f"No such fine-tuning job: {job_id}", param=param)
    if dep.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise InvalidRequest(
            f"job {job_id} is {dep.status}: it will produce no model",
            param=param,
            code="dependency_failed",
        )
    makes_reward_model = (dep.spec.get("method") or {}).get("type") == "reward_model"
    if makes_reward_model != reward_model:
        what = "a reward model" if reward_model else "a model that generates text"
        raise InvalidRequest(
            f"{param} must name {what}; job {job_id} trains "
            f"{'a reward model' if makes_reward_model else 'a generator'}",
            param=param,
        )
    return dep


def describe(job: Job) -> str:
    return f"stage '{job.stage}' ({job.id})" if job.stage else f"job {job.id}"


def release(session: Session, job: Job) -> bool:
    """Fill in the models of finished dependencies; True if this moved the job to `queued`.
    Fails the job if a dependency failed."""
    if job.status != JobStatus.VALIDATING_FILES or not waiting(job):
        return False
    deps = {dep_id: session.get(Job, dep_id) for dep_id in job.depends_on or []}
    for dep in deps.values():
        if dep is None or dep.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            _fail(session, job, _why(dep))
            return False
    if any(dep.status != JobStatus.SUCCEEDED for dep in deps.values()):  # type: ignore[union-attr]
        return False
    spec = copy.deepcopy(job.spec)
    for param, value in model_fields(spec).items():
        if is_job_ref(value):
            set_model_field(spec, param, deps[value].fine_tuned_model)  # type: ignore[union-attr,arg-type]
    if not transition(
        session, job.id, JobStatus.QUEUED, spec=spec, model=spec["model"], enqueued_at=utcnow()
    ):
        return False
    names = ", ".join(f"{describe(d)} → {d.fine_tuned_model}" for d in deps.values())  # type: ignore[union-attr]
    add_event(session, job.id, f"Dependencies succeeded ({names}), job queued")
    return True


def dependants(session: Session, job: Job) -> list[Job]:
    """Waiting jobs of the same organization that use `job`'s output."""
    rows = session.scalars(
        select(Job).where(
            Job.organization_id == job.organization_id,
            Job.status == JobStatus.VALIDATING_FILES.value,
        )
    )
    return [row for row in rows if job.id in (row.depends_on or [])]


def on_succeeded(session: Session, job_id: str) -> list[str]:
    """Release the dependants of a job that just succeeded and run the finished-job hooks (a
    sweep starts its next trials); the ids to enqueue after commit."""
    job = session.get(Job, job_id)
    session.flush()
    ready = [dep.id for dep in dependants(session, job) if release(session, dep)]  # type: ignore[arg-type]
    return ready + job_finished(session, job_id, succeeded=True)


def on_failed(session: Session, job_id: str) -> None:
    """Fail every job that (transitively) waits for a job that failed or was cancelled."""
    session.flush()
    job = session.get(Job, job_id)
    session.refresh(job)  # type: ignore[arg-type]
    reason = _why(job)
    for dep in dependants(session, job):  # type: ignore[arg-type]
        _fail(session, dep, reason)
    # Hooks get no queue here: e.g. a sweep's replacement trial is started by the reconciler.
    job_finished(session, job_id, succeeded=False)


def _why(dep: Job | None) -> str:
    if dep is None:
        return "a job it depends on was deleted"
    if dep.status == JobStatus.CANCELLED:
        return f"{describe(dep)} was cancelled"
    message = (dep.error or {}).get("message", "unknown error")
    return f"{describe(dep)} failed: {message}"


def _fail(session: Session, job: Job, reason: str) -> None:
    error = {"code": "dependency_failed", "message": f"Dependency failed: {reason}", "param": None}
    if transition(session, job.id, JobStatus.FAILED, error=error):
        add_event(session, job.id, f"Fine-tuning job failed: {error['message']}", level="error")
        for dep in dependants(session, job):
            _fail(session, dep, reason)
