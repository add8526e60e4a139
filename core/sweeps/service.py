"""Hyperparameter sweeps: `POST /v1/fine_tuning/sweeps` runs one job per point of a search space.

Every trial is an ordinary fine-tuning job, created through `service.create_job` (so it is
validated, listed, evented and checkpointed like any other) with metadata naming the sweep.
All trial points are drawn when the sweep is created (core.sweeps.space; the body is
core.sweeps.spec's, the trials' progress core.sweeps.trials'); at most
`max_parallel` trials are unfinished at once. The sweep moves on (`advance`):

- when a trial succeeds: `dependencies.on_succeeded`, in the runner's transaction, returns the
  next trials for the worker to enqueue, as it does for a pipeline's next stage;
- on the API's periodic reconciler pass (`reconcile`): after a trial failed or was cancelled
  (those hooks have no queue to hand jobs to), and to stop clearly worse running trials by the
  median rule (core.sweeps.pruning) when the sweep asks for it.

`advance` starts by updating the sweep row, so the worker's hook and the reconciler never
create the same trial twice: Postgres locks the row, SQLite the database, until commit. Locks
are always taken job row first, sweep row second (the worker's publish moves its job, then
calls the hook), and nothing else locks a job row while holding a sweep's: the reconciler
stops each trial in its own transaction, and a cancelled sweep is committed as such before its
trials are cancelled (a sweep that is not running is never locked).
"""

from __future__ import annotations

import contextlib
import copy
import secrets
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.data.prepare import AUTO_MIN_EXAMPLES
from core.errors import InvalidRequest, LatheError, NotFound
from core.ids import new_id
from core.jobs.events import add_event
from core.jobs.service import cancel_job, create_job
from core.jobs.states import TERMINAL, JobStatus
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.models import File, Job, Sweep, utcnow
from core.persistence.pagination import page
from core.sweeps.space import apply_point, trial_points
from core.sweeps.spec import SWEEP_FIELDS, SweepCreate
from core.sweeps.states import SWEEPS, SweepStatus
from core.sweeps.trials import best_trial, to_stop, trial_jobs

SWEEP_KEY = "lathe_sweep"
TRIAL_KEY = "lathe_sweep_trial"


def _template(body: SweepCreate) -> dict[str, Any]:
    """The job body every trial starts from (legacy top-level hyperparameters folded in)."""
    job = JobCreate.model_validate(body.model_dump(exclude=set(SWEEP_FIELDS)))
    job.method, job.hyperparameters = job.resolved_method(), None
    if job.seed is None:  # one seed for every trial: they differ only where the points do
        job.seed = secrets.randbelow(2**31)
    return job.model_dump(mode="json", exclude_none=True, exclude_unset=False)


def _error_param(exc: ValidationError, point: dict[str, Any]) -> str:
    loc = [str(p) for p in exc.errors()[0].get("loc", ())]
    if loc[:1] == ["adapter"] and len(loc) > 1 and f"adapter.{loc[1]}" in point:
        return f"search_space.adapter.{loc[1]}"
    named = [p for p in loc if p in point]
    return f"search_space.{named[0]}" if named else ".".join(loc) or "search_space"


def _trial_bodies(template: dict[str, Any], points: list[dict[str, Any]]) -> None:
    """Every trial must be a valid job body: a 400 naming the search-space key otherwise."""
    for point in points:
        try:
            JobCreate.model_validate(apply_point(copy.deepcopy(template), point))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidRequest(
                f"{point}: {first.get('msg')}", param=_error_param(exc, point)
            ) from None


def _check_objective(session: Session, org_id: str, body: SweepCreate) -> None:
    """A validation metric needs validation data, or every trial would end without one."""
    if not body.objective.metric.startswith("valid_") or body.validation_file:
        return
    split = body.data.validation_split
    training = session.get(File, body.training_file)
    too_small = (
        split == "auto"
        and training is not None
        and training.organization_id == org_id
        and training.n_examples is not None
        and training.n_examples < AUTO_MIN_EXAMPLES
    )
    if split == 0 or too_small:
        raise InvalidRequest(
            f"objective.metric {body.objective.metric} needs validation data: give a "
            "validation_file or data.validation_split (auto holds out nothing from files of "
            f"fewer than {AUTO_MIN_EXAMPLES} examples)",
            param="objective.metric",
        )


def create_sweep(session: Session, org_id: str, body: SweepCreate) -> tuple[Sweep, list[str]]:
    """The sweep and the ids of its first trials (the caller enqueues them after commit)."""
    _check_objective(session, org_id, body)
    template = _template(body)
    points = trial_points(body.search_space, body.search)
    _trial_bodies(template, points)
    sweep = Sweep(
        id=new_id("ftsweep-"),
        organization_id=org_id,
        status=SweepStatus.RUNNING.value,
        spec={
            "job": template,
            **body.model_dump(mode="json", include=set(SWEEP_FIELDS), exclude_none=True),
        },
        trials=[{"index": i, "parameters": p, "job_id": None} for i, p in enumerate(points)],
    )
    session.add(sweep)
    session.flush()
    return sweep, advance(session, sweep)


def _trial_job(session: Session, sweep: Sweep, trial: dict[str, Any]) -> Job:
    body = apply_point(copy.deepcopy(sweep.spec["job"]), trial["parameters"])
    body["metadata"] = {
        **(body.get("metadata") or {}),
        SWEEP_KEY: sweep.id,
        TRIAL_KEY: str(trial["index"]),
    }
    return create_job(session, sweep.organization_id, JobCreate.model_validate(body))


def _done(trial: dict[str, Any], jobs: dict[str, Job]) -> bool:
    job = jobs.get(trial.get("job_id") or "")
    return bool(trial.get("error")) or (job is not None and JobStatus(job.status) in TERMINAL)


def advance(session: Session, sweep: Sweep, create: bool = True) -> list[str]:
    """Start trials up to max_parallel (unless `create` is off) and close the sweep once every
    trial has finished; the ids of the jobs created."""
    session.refresh(sweep)
    if sweep.status != SweepStatus.RUNNING:  # read before locking: see the module's note on locks
        return []
    session.execute(update(Sweep).where(Sweep.id == sweep.id).values(updated_at=utcnow()))
    session.refresh(sweep)
    if sweep.status != SweepStatus.RUNNING:
        return []
    trials = copy.deepcopy(sweep.trials)
    jobs = trial_jobs(session, sweep)
    active = sum(1 for t in trials if t.get("job_id") and not _done(t, jobs))
    created: list[str] = []
    for trial in trials:
        if not create or active >= sweep.spec["max_parallel"]:
            break
        if trial.get("job_id") or trial.get("error"):
            continue
        try:
            job = _trial_job(session, sweep, trial)
        except LatheError as exc:  # e.g. the training file was deleted since
            trial["error"] = exc.message
            continue
        trial["job_id"] = job.id
        jobs[job.id] = job
        created.append(job.id)
        active += 1
    sweep.trials = trials
    if all(t.get("job_id") or t.get("error") for t in trials) and all(
        _done(t, jobs) for t in trials
    ):
        best = best_trial(session, sweep, jobs)
        SWEEPS.move(sweep, SweepStatus.SUCCEEDED if best is not None else SweepStatus.FAILED)
        sweep.finished_at = utcnow()
    return created


def trial_finished(session: Session, job_id: str, succeeded: bool) -> list[str]:
    """The finished-job hook (core.jobs.lifecycle): advance the job's sweep if it is a trial.
    A successful trial starts the next ones; after a failed one the reconciler does."""
    job = session.get(Job, job_id)
    sweep_id = ((job.metadata_ if job else None) or {}).get(SWEEP_KEY)
    if sweep_id is None:
        return []
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or sweep.organization_id != job.organization_id:  # type: ignore[union-attr]
        return []
    if job_id not in {t.get("job_id") for t in sweep.trials}:
        return []
    return advance(session, sweep, create=succeeded)


def stop_trial(session: Session, sweep: Sweep, job_id: str, step: int, value: float) -> None:
    """Cancel a trial the median rule stopped, saying so on its job, and mark it pruned."""
    metric = sweep.spec["objective"]["metric"]
    add_event(
        session,
        job_id,
        f"Stopped by sweep {sweep.id}: {metric} {value:.4f} at step {step} is worse than the "
        "median of the other trials by then",
        data={"sweep": sweep.id, "step": step, metric: value},
    )
    try:
        cancel_job(session, sweep.organization_id, job_id)  # locks the job, then the sweep
    except InvalidRequest:  # it finished meanwhile: nothing to stop
        session.rollback()
        return
    session.execute(update(Sweep).where(Sweep.id == sweep.id).values(updated_at=utcnow()))
    session.refresh(sweep)
    sweep.trials = [{**t, "pruned": True} if t.get("job_id") == job_id else t for t in sweep.trials]


def reconcile(url: str) -> list[str]:
    """The reconciler's pass over running sweeps: stop clearly worse trials, then start the
    next ones; the ids of the jobs created. Each step is its own transaction (see the
    module's note on locks)."""
    with session_scope(url) as session:
        ids = list(
            session.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.RUNNING.value))
        )
    created: list[str] = []
    for sweep_id in ids:
        with session_scope(url) as session:
            doomed = to_stop(session, session.get(Sweep, sweep_id))  # type: ignore[arg-type]
        for job_id, step, value in doomed:
            with session_scope(url) as session:
                stop_trial(session, session.get(Sweep, sweep_id), job_id, step, value)  # type: ignore[arg-type]
        with session_scope(url) as session:
            created += advance(session, session.get(Sweep, sweep_id))  # type: ignore[arg-type]
    return created


def get_sweep(session: Session, org_id: str, sweep_id: str) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or sweep.organization_id != org_id:
        raise NotFound(f"No such sweep: {sweep_id}", param="sweep_id")
    return sweep


def list_sweeps(
    session: Session, org_id: str, after: str | None, limit: int
) -> tuple[list[Sweep], bool]:
    query = select(Sweep).where(Sweep.organization_id == org_id)
    cursor = get_sweep(session, org_id, after) if after else None
    return page(session, query, Sweep, cursor, limit, desc=True)


def cancel_sweep(session: Session, org_id: str, sweep_id: str) -> Sweep:
    """Mark the sweep cancelled: it starts no more trials. The caller commits, then calls
    `cancel_trials` (see the module's note on locks)."""
    sweep = get_sweep(session, org_id, sweep_id)
    now = utcnow()
    moved = SWEEPS.move_where(
        session, SweepStatus.CANCELLED, Sweep.id == sweep.id, finished_at=now, updated_at=now
    )
    session.refresh(sweep)
    if moved != 1:
        raise InvalidRequest(
            f"Sweep {sweep_id} is {sweep.status} and can no longer be cancelled",
            code="invalid_state",
        )
    return sweep


def cancel_trials(session: Session, sweep: Sweep) -> None:
    """Cancel a cancelled sweep's unfinished trials (their workers stop at the next step)."""
    for job in trial_jobs(session, sweep).values():
        if JobStatus(job.status) not in TERMINAL:
            with contextlib.suppress(InvalidRequest):  # it finished meanwhile
                cancel_job(session, sweep.organization_id, job.id)
