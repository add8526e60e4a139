"""Jobs that wait for other jobs: pipelines, release on success, failure down the chain, and
the reconciler catching a lost release. Job outcomes are simulated through the state machine
and the hooks the runner calls, so every path runs in milliseconds on real Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.auth import get_or_create_org
from core.errors import InvalidRequest
from core.jobs.dependencies import on_failed, on_succeeded
from core.jobs.pipeline import PipelineCreate, create_pipeline
from core.jobs.service import cancel_job, create_job, stale_jobs
from core.jobs.states import JobStatus, transition
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import File, Job, Model


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    with session_scope(pg_url) as s:
        if s.get(Model, "tiny-llama") is None:
            s.add(Model(id="tiny-llama", kind="base", base_model="tiny-llama"))
    return pg_url


@pytest.fixture
def org(db) -> str:
    with session_scope(db) as s:
        org = get_or_create_org(s, "deps")
        if s.get(File, "file-deps") is None:
            s.add(
                File(
                    id="file-deps",
                    organization_id=org.id,
                    filename="d.jsonl",
                    purpose="fine-tune",
                    bytes=1,
                    sha256="0",
                    storage_key="k",
                    status="processed",
                )
            )
        return org.id


def _stages() -> PipelineCreate:
    common = {"training_file": "file-deps"}
    return PipelineCreate.model_validate(
        {
            "stages": [
                {"name": "sft", "model": "tiny-llama", **common},
                {"name": "rm", "model": "$sft", "method": {"type": "reward_model"}, **common},
                {
                    "name": "ppo",
                    "model": "$sft",
                    **common,
                    "method": {"type": "ppo", "ppo": {"reward_model": "$rm"}},
                },
            ]
        }
    )


def _succeed(db: str, job_id: str, model: str, task: str = "causal_lm") -> list[str]:
    """What runner._publish does, minus the training."""
    with session_scope(db) as s:
        transition(s, job_id, JobStatus.QUEUED)  # released jobs are queued already
        assert transition(s, job_id, JobStatus.RUNNING)
        job = s.get(Job, job_id)
        s.add(
            Model(
                id=model,
                organization_id=job.organization_id,
                kind="fine_tuned",
                base_model="tiny-llama",
                job_id=job_id,
                artifact_key="k",
                task=task,
            )
        )
        assert transition(s, job_id, JobStatus.SUCCEEDED, fine_tuned_model=model)
        return on_succeeded(s, job_id)


def _job(db: str, job_id: str) -> Job:
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        return job


def test_stages_run_in_order_and_get_the_models_they_named(db, org):
    with session_scope(db) as s:
        sft, rm, ppo = (j.id for j in create_pipeline(s, org, _stages()))
    assert _job(db, rm).depends_on == [sft] and _job(db, rm).model == sft
    assert _job(db, ppo).depends_on == sorted([sft, rm])

    assert _succeed(db, sft, f"ft:sft:{sft}") == [rm]  # ppo still waits for rm
    released = _job(db, rm)
    assert released.status == JobStatus.QUEUED and released.model == f"ft:sft:{sft}"
    assert released.spec["model"] == f"ft:sft:{sft}"
    assert _job(db, ppo).status == JobStatus.VALIDATING_FILES

    assert _succeed(db, rm, f"ft:rm:{rm}", task="reward_model") == [ppo]
    job = _job(db, ppo)
    assert job.status == JobStatus.QUEUED and job.model == f"ft:sft:{sft}"
    assert job.spec["method"]["ppo"]["reward_model"] == f"ft:rm:{rm}"


def test_a_failure_or_cancel_fails_every_stage_after_it(db, org):
    with session_scope(db) as s:
        sft, rm, ppo = (j.id for j in create_pipeline(s, org, _stages()))
    with session_scope(db) as s:
        transition(s, sft, JobStatus.QUEUED)
        transition(s, sft, JobStatus.RUNNING)
        transition(s, sft, JobStatus.FAILED, error={"code": "x", "message": "out of memory"})
        on_failed(s, sft)
    for job_id in (rm, ppo):
        job = _job(db, job_id)
        assert job.status == JobStatus.FAILED and job.error["code"] == "dependency_failed"
        assert job.error["message"] == (
            f"Dependency failed: stage 'sft' ({sft}) failed: out of memory"
        )

    with session_scope(db) as s:
        sft, rm, ppo = (j.id for j in create_pipeline(s, org, _stages()))
    with session_scope(db) as s:
        cancel_job(s, org, rm)
    assert _job(db, sft).status == JobStatus.QUEUED  # upstream is untouched
    assert _job(db, ppo).error["message"] == f"Dependency failed: stage 'rm' ({rm}) was cancelled"


def test_the_reconciler_releases_a_job_whose_release_was_lost(db, org):
    with session_scope(db) as s:
        sft, rm, ppo = (j.id for j in create_pipeline(s, org, _stages()))
    with session_scope(db) as s:  # succeeded, but the worker died before on_succeeded ran
        for status in (JobStatus.QUEUED, JobStatus.RUNNING):
            transition(s, sft, status)
        transition(s, sft, JobStatus.SUCCEEDED, fine_tuned_model="ft:lost")
    with session_scope(db) as s:
        ids = {j.id for j in stale_jobs(s, older_than_s=-1)}
    assert rm in ids and ppo not in ids and sft not in ids
    assert _job(db, rm).status == JobStatus.QUEUED and _job(db, rm).model == "ft:lost"


def test_a_finished_job_is_resolved_at_creation_and_a_failed_one_refused(db, org):
    with session_scope(db) as s:
        [sft] = create_pipeline(
            s,
            org,
            PipelineCreate.model_validate(
                {"stages": [{"name": "sft", "model": "tiny-llama", "training_file": "file-deps"}]}
            ),
        )
        sft_id = sft.id
    _succeed(db, sft_id, f"ft:done:{sft_id}")
    body = JobCreate(model=sft_id, training_file="file-deps", method={"type": "dpo"})  # type: ignore[arg-type]
    with session_scope(db) as s:
        job = create_job(s, org, body)
        assert job.model == f"ft:done:{sft_id}" and job.depends_on is None

    with session_scope(db) as s:
        [bad] = create_pipeline(
            s,
            org,
            PipelineCreate.model_validate(
                {"stages": [{"name": "x", "model": "tiny-llama", "training_file": "file-deps"}]}
            ),
        )
        cancel_job(s, org, bad.id)
        with pytest.raises(InvalidRequest, match="cancelled") as err:
            create_job(s, org, JobCreate(model=bad.id, training_file="file-deps"))
        assert err.value.param == "model"
        rm_body = JobCreate.model_validate(
            {
                "model": "tiny-llama",
                "training_file": "file-deps",
                "method": {"type": "ppo", "ppo": {"reward_model": sft_id}},
            }
        )
        with pytest.raises(InvalidRequest, match="must name a reward model") as err:
            create_job(s, org, rm_body)
        assert err.value.param == "method.ppo.reward_model"
        assert not s.scalars(select(Job).where(Job.model == bad.id)).all()


def test_a_supervised_stage_can_continue_an_unfinished_stage(db, org):
    body = PipelineCreate.model_validate(
        {
            "stages": [
                {
                    "name": "a",
                    "model": "tiny-llama",
                    "training_file": "file-deps",
                    "adapter": {"type": "lora", "r": 4},
                },
                {"name": "b", "model": "$a", "training_file": "file-deps"},
            ]
        }
    )
    with session_scope(db) as s:
        a, b = create_pipeline(s, org, body)
        assert b.spec["adapter"]["r"] == 4  # it continues a's adapter, so it has a's shape
        assert b.depends_on == [a.id] and s.get(Model, a.id) is None
