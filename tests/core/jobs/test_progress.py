"""estimated_finish on a real Postgres, and what GET /v1/models lists (no checkpoints)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.auth import get_or_create_org
from core.ids import new_id
from core.jobs.progress import estimated_finish
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, JobEvent, Model, utcnow
from core.registry import visible_models


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    return pg_url


def _job(s, status: str = "running", started_ago_s: float = 100) -> Job:
    job = Job(
        id=new_id("ftjob-"),
        organization_id=get_or_create_org(s, "progress").id,
        model="m",
        base_model="m",
        status=status,
        spec={"method": {"type": "supervised"}},
        training_file="f",
        seed=1,
        result_files=[],
        started_at=utcnow() - timedelta(seconds=started_ago_s),
    )
    s.add(job)
    s.flush()
    return job


def _step(s, job: Job, step: int, at_s: float, total: int = 20) -> None:
    """A metrics event `at_s` seconds after the job started."""
    s.add(
        JobEvent(
            id=new_id("ftevent-"),
            job_id=job.id,
            type="metrics",
            message=f"Step {step}/{total}",
            data={"step": step, "total_steps": total, "train_loss": 1.0},
            created_at=job.started_at + timedelta(seconds=at_s),
        )
    )
    s.flush()


def test_estimate_follows_the_measured_step_rate(db):
    with session_scope(db) as s:
        job = _job(s)
        assert estimated_finish(s, job) is None  # no step reported yet
        for step in range(1, 11):
            _step(s, job, step, at_s=10 * step)  # 10 s per step
        # 10 steps left at 10 s each after the latest step (at 100 s)
        expected = job.started_at + timedelta(seconds=200)
        assert abs((estimated_finish(s, job) - expected).total_seconds()) < 1e-3
        for status in ("succeeded", "failed", "cancelled", "paused", "queued"):
            job.status = status
            assert estimated_finish(s, job) is None, status


def test_a_resumed_job_is_measured_from_its_resume(db):
    with session_scope(db) as s:
        job = _job(s, started_ago_s=10)
        for step in range(1, 6):  # the run before the pause: not this run's time
            _step(s, job, step, at_s=-1000 + step)
        _step(s, job, 6, at_s=5)
        _step(s, job, 7, at_s=10)  # two steps in 10 s since the resume: 5 s per step
        expected = job.started_at + timedelta(seconds=10 + 5 * 13)
        assert abs((estimated_finish(s, job) - expected).total_seconds()) < 1e-3


def test_models_list_leaves_checkpoints_out(db):
    with session_scope(db) as s:
        org = get_or_create_org(s, "lister").id
        tuned = f"ft:m:lister::{new_id('x')}"
        for model_id, kind in ((tuned, "fine_tuned"), (f"{tuned}:ckpt-step-3", "checkpoint")):
            s.add(Model(id=model_id, kind=kind, base_model="m", organization_id=org))
        s.flush()
        listed = {m.id for m in visible_models(s, org)}
        assert tuned in listed and f"{tuned}:ckpt-step-3" not in listed
        assert s.get(Model, f"{tuned}:ckpt-step-3") is not None  # still there by id
