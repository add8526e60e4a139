"""Hyperparameter sweeps: `POST /v1/fine_tuning/sweeps` runs one job per point of a search space.

Every trial is an ordinary fine-tuning job, created through `service.create_job` (so it is
validated, listed, evented and checkpointed like any other) with metadata naming the sweep.
All trial points are drawn when the sweep is created (core.jobs.sweep_space); at most
`max_parallel` trials are unfinished at once. The sweep moves on (`advance`):

- when a trial succeeds: `dependencies.on_succeeded`, in the runner's transaction, returns the
  next trials for the worker to enqueue, as it does for a pipeline's next stage;
- on the API's periodic reconciler pass (`reconcile`): after a trial failed or was cancelled
  (those hooks have no queue to hand jobs to), and to stop clearly worse running trials by the
  median rule (core.jobs.sweep_pruning) when the sweep asks for it.

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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.data.prepare import AUTO_MIN_EXAMPLES
from core.errors import InvalidRequest, LatheError, NotFound
from core.ids import new_id
from core.jobs.events import add_event
from core.jobs.spec import JobCreate
from core.jobs.states import TERMINAL, JobStatus
from core.jobs.sweep_pruning import Curve, should_stop
from core.jobs.sweep_space import Range, Search, apply_point, trial_points
from core.persistence.db import session_scope
from core.persistence.models import File, Job, JobEvent, Sweep, utcnow
from core.persistence.pagination import page

SWEEP_KEY = "lathe_sweep"
TRIAL_KEY = "lathe_sweep_trial"

Metric = Literal[
    "valid_loss",
    "valid_mean_token_accuracy",
    "valid_accuracy",
    "valid_macro_f1",
    "valid_pair_accuracy",
    "valid_agreement",
    "valid_distillation_loss",
    "train_loss",
    "mean_reward",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    metric: Metric = Field(
        description="A metric the trials report in their metrics events: the final "
        "evaluation's value (else the last event's) is the trial's objective."
    )
    goal: Literal["minimize", "maximize"] = "minimize"


class Pruning(_Strict):
    type: Literal["median"] = "median"
    min_trials: int = Field(2, ge=1, description="Trials that must have reported by a step.")
    warmup_steps: int = Field(0, ge=0, description="Steps before a trial may be stopped.")


class SweepCreate(JobCreate):
    """Body of `POST /v1/fine_tuning/sweeps`: a job body plus what to search."""

    search_space: dict[str, list[Any] | Range] = Field(
        description="Hyperparameter of the method (`learning_rate`) or `adapter.<field>` → "
        "a list of values, {min, max} or {min, max, log: true}."
    )
    search: Search = Search()
    objective: Objective
    max_parallel: int = Field(2, ge=1, le=16, description="Trials unfinished at once.")
    pruning: Pruning | None = Field(None, description="Stop clearly worse trials early.")


SWEEP_FIELDS = frozenset({"search_space", "search", "objective", "max_parallel", "pruning"})


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
        status="running",
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
    from core.jobs.service import create_job

    body = apply_point(copy.deepcopy(sweep.spec["job"]), trial["parameters"])
    body["metadata"] = {
        **(body.get("metadata") or {}),
        SWEEP_KEY: sweep.id,
        TRIAL_KEY: str(trial["index"]),
    }
    return create_job(session, sweep.organization_id, JobCreate.model_validate(body))


def _jobs(session: Session, sweep: Sweep) -> dict[str, Job]:
    ids = [t["job_id"] for t in sweep.trials if t.get("job_id")]
    if not ids:
        return {}
    query = select(Job).where(Job.id.in_(ids)).execution_options(populate_existing=True)
    return {job.id: job for job in session.scalars(query)}


def _done(trial: dict[str, Any], jobs: dict[str, Job]) -> bool:
    job = jobs.get(trial.get("job_id") or "")
    return bool(trial.get("error")) or (job is not None and JobStatus(job.status) in TERMINAL)


def advance(session: Session, sweep: Sweep, create: bool = True) -> list[str]:
    """Start trials up to max_parallel (unless `create` is off) and close the sweep once every
    trial has finished; the ids of the jobs created."""
    session.refresh(sweep)
    if sweep.status != "running":  # read before locking: see the module's note on locks
        return []
    session.execute(update(Sweep).where(Sweep.id == sweep.id).values(updated_at=utcnow()))
    session.refresh(sweep)
    if sweep.status != "running":
        return []
    trials = copy.deepcopy(sweep.trials)
    jobs = _jobs(session, sweep)
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
        sweep.status = "succeeded" if best is not None else "failed"
        sweep.finished_at = utcnow()
    return created


def trial_finished(session: Session, job_id: str, create: bool) -> list[str]:
    """The hook core.jobs.dependencies calls when any job finishes: advance its sweep."""
    job = session.get(Job, job_id)
    sweep_id = ((job.metadata_ if job else None) or {}).get(SWEEP_KEY)
    if sweep_id is None:
        return []
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or sweep.organization_id != job.organization_id:  # type: ignore[union-attr]
        return []
    if job_id not in {t.get("job_id") for t in sweep.trials}:
        return []
    return advance(session, sweep, create=create)


def curves(session: Session, jobs: list[str], metric: str) -> dict[str, Curve]:
    """Each job's (step, metric) from its metrics events, in step order."""
    out: dict[str, Curve] = {job_id: [] for job_id in jobs}
    query = (
        select(JobEvent)
        .where(JobEvent.job_id.in_(jobs), JobEvent.type == "metrics")
        .order_by(JobEvent.seq)
    )
    for event in session.scalars(query):
        data = event.data or {}
        if metric in data and "step" in data:
            out[event.job_id].append((int(data["step"]), float(data[metric])))
    return out


def objective(job: Job, curve: Curve, metric: str) -> float | None:
    """A succeeded trial's objective: its final evaluation's value, else its last report."""
    if job.status != JobStatus.SUCCEEDED:
        return None
    tuned = (job.evaluation or {}).get("tuned") or {}
    if metric in tuned:
        return float(tuned[metric])
    return curve[-1][1] if curve else None


def best_trial(
    session: Session, sweep: Sweep, jobs: dict[str, Job] | None = None
) -> dict[str, Any] | None:
    return next((t for t in trial_views(session, sweep, jobs) if t["best"]), None)


def trial_views(
    session: Session, sweep: Sweep, jobs: dict[str, Job] | None = None
) -> list[dict[str, Any]]:
    """Every trial as the sweep object reports it, the best one marked."""
    jobs = jobs if jobs is not None else _jobs(session, sweep)
    metric, goal = sweep.spec["objective"]["metric"], sweep.spec["objective"]["goal"]
    lines = curves(session, list(jobs), metric)
    views = []
    for trial in sweep.trials:
        job = jobs.get(trial.get("job_id") or "")
        views.append(
            {
                "index": trial["index"],
                "parameters": trial["parameters"],
                "job_id": trial.get("job_id"),
                "status": job.status if job else ("failed" if trial.get("error") else "pending"),
                "objective": objective(job, lines[job.id], metric) if job else None,
                "fine_tuned_model": job.fine_tuned_model if job else None,
                "pruned": bool(trial.get("pruned")),
                "error": trial.get("error"),
                "best": False,
            }
        )
    scored = [v for v in views if v["objective"] is not None]
    if scored:
        pick = min if goal == "minimize" else max
        pick(scored, key=lambda v: v["objective"])["best"] = True
    return views


def to_stop(session: Session, sweep: Sweep) -> list[tuple[str, int, float]]:
    """(job, step, objective) of running trials the median rule says are clearly worse."""
    rule = sweep.spec.get("pruning")
    if not rule or sweep.status != "running":
        return []
    jobs = _jobs(session, sweep)
    metric, goal = sweep.spec["objective"]["metric"], sweep.spec["objective"]["goal"]
    lines = curves(session, list(jobs), metric)
    doomed = []
    for job in jobs.values():
        others = [c for job_id, c in lines.items() if job_id != job.id]
        if job.status == JobStatus.RUNNING and should_stop(
            lines[job.id], others, goal, rule["min_trials"], rule["warmup_steps"]
        ):
            doomed.append((job.id, *lines[job.id][-1]))
    return doomed


def stop_trial(session: Session, sweep: Sweep, job_id: str, step: int, value: float) -> None:
    """Cancel a trial the median rule stopped, saying so on its job, and mark it pruned."""
    from core.jobs.service import cancel_job

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
        ids = list(session.scalars(select(Sweep.id).where(Sweep.status == "running")))
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
    moved = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep.id, Sweep.status == "running")
        .values(status="cancelled", finished_at=utcnow(), updated_at=utcnow())
    )
    session.refresh(sweep)
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidRequest(
            f"Sweep {sweep_id} is {sweep.status} and can no longer be cancelled",
            code="invalid_state",
        )
    return sweep


def cancel_trials(session: Session, sweep: Sweep) -> None:
    """Cancel a cancelled sweep's unfinished trials (their workers stop at the next step)."""
    from core.jobs.service import cancel_job

    for job in _jobs(session, sweep).values():
        if JobStatus(job.status) not in TERMINAL:
            with contextlib.suppress(InvalidRequest):  # it finished meanwhile
                cancel_job(session, sweep.organization_id, job.id)
