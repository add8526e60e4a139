"""What a sweep's trials have done so far: their jobs, objective curves and the best trial.

Read-only: the lifecycle (core.sweeps.service) and the wire object (api.schemas_sweeps) build on
these. A trial's curve is its objective metric in its metrics events; a succeeded trial's
objective is its final evaluation's value (else its last report); the best trial has the
lowest (`minimize`) or highest (`maximize`) objective.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs.states import JobStatus
from core.persistence.models import Job, JobEvent, Sweep
from core.sweeps.pruning import Curve, should_stop
from core.sweeps.states import SweepStatus


def trial_jobs(session: Session, sweep: Sweep) -> dict[str, Job]:
    ids = [t["job_id"] for t in sweep.trials if t.get("job_id")]
    if not ids:
        return {}
    query = select(Job).where(Job.id.in_(ids)).execution_options(populate_existing=True)
    return {job.id: job for job in session.scalars(query)}


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
    jobs = jobs if jobs is not None else trial_jobs(session, sweep)
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
                "status": job.status if job else _unstarted(sweep, trial),
                "objective": objective(job, lines[job.id], metric) if job else None,
                "fine_tuned_model": job.fine_tuned_model if job else None,
                "pruned": bool(trial.get("pruned")),
                "error": trial.get("error"),
                "best": False,
            }
        )
    scored = [v for v in views if v["objective"] is not None]
    if scored and sweep.status != "cancelled":  # a cancelled sweep judged nothing
        pick = min if goal == "minimize" else max
        pick(scored, key=lambda v: v["objective"])["best"] = True
    return views


def _unstarted(sweep: Sweep, trial: dict[str, Any]) -> str:
    """A trial with no job yet: failed to start, cancelled with its sweep, or pending."""
    if trial.get("error"):
        return "failed"
    return "cancelled" if sweep.status == "cancelled" else "pending"


def to_stop(session: Session, sweep: Sweep) -> list[tuple[str, int, float]]:
    """(job, step, objective) of running trials the median rule says are clearly worse."""
    rule = sweep.spec.get("pruning")
    if not rule or sweep.status != SweepStatus.RUNNING:
        return []
    jobs = trial_jobs(session, sweep)
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
