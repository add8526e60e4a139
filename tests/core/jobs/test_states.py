"""The state machine decides races in the database: exactly one contender wins."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from core.auth import get_or_create_org
from core.errors import InvalidRequest
from core.ids import new_id
from core.jobs.service import pause_job, resume_job, stale_jobs
from core.jobs.states import TERMINAL, TRANSITIONS, JobStatus, predecessors, transition
from core.persistence.db import get_sessionmaker, session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, JobEvent


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    return pg_url


def _job(db: str, status: JobStatus, method: str = "supervised") -> str:
    with session_scope(db) as s:
        org = get_or_create_org(s, "states")
        job = Job(
            id=new_id("ftjob-"),  # unique: several jobs per test
            organization_id=org.id,
            model="m",
            base_model="m",
            status=status.value,
            spec={"method": {"type": method}},
            training_file="f",
            seed=1,
            result_files=[],
        )
        s.add(job)
        return job.id


def test_terminal_states_have_no_way_out():
    for status in TERMINAL:
        assert status not in TRANSITIONS
        assert predecessors(status)


def test_claim_is_won_by_exactly_one_worker(db):
    job_id = _job(db, JobStatus.QUEUED)
    wins, barrier = [], threading.Barrier(8)

    def claim() -> None:
        session: Session = get_sessionmaker(db)()
        barrier.wait()
        if transition(session, job_id, JobStatus.RUNNING, worker="w"):
            wins.append(1)
        session.commit()
        session.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_finish_after_cancel_is_refused(db):
    job_id = _job(db, JobStatus.RUNNING)
    with session_scope(db) as s:
        assert transition(s, job_id, JobStatus.CANCELLED)
    with session_scope(db) as s:
        assert not transition(s, job_id, JobStatus.SUCCEEDED, fine_tuned_model="ft:x")
        job = s.get(Job, job_id)
        assert job.status == "cancelled" and job.fine_tuned_model is None
        assert job.finished_at is not None


def test_running_stamps_started_at(db):
    job_id = _job(db, JobStatus.QUEUED)
    with session_scope(db) as s:
        assert transition(s, job_id, JobStatus.RUNNING)
    with session_scope(db) as s:
        assert s.get(Job, job_id).started_at is not None


@pytest.mark.parametrize("start", [JobStatus.VALIDATING_FILES, JobStatus.QUEUED, JobStatus.RUNNING])
def test_paused_resumes_to_queued_or_is_cancelled_and_nothing_else(db, start):
    job_id = _job(db, start)
    with session_scope(db) as s:
        assert transition(s, job_id, JobStatus.PAUSED)
    with session_scope(db) as s:  # no worker owns a paused job: it neither runs nor finishes
        for target in (JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED):
            assert not transition(s, job_id, target)
        assert s.get(Job, job_id).finished_at is None  # paused is not terminal
        assert transition(s, job_id, JobStatus.QUEUED)  # resume
    with session_scope(db) as s:
        assert transition(s, job_id, JobStatus.PAUSED)
        assert transition(s, job_id, JobStatus.CANCELLED)
    with session_scope(db) as s:
        assert s.get(Job, job_id).finished_at is not None
        assert not transition(s, job_id, JobStatus.PAUSED)


def _org(db: str, job_id: str) -> str:
    with session_scope(db) as s:
        return s.get(Job, job_id).organization_id


def _messages(s, job_id: str) -> list[str]:
    return [e.message for e in s.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.seq)]


def test_pause_and_resume_refuse_other_states_naming_them(db):
    done = _job(db, JobStatus.SUCCEEDED)
    org = _org(db, done)
    with session_scope(db) as s:
        with pytest.raises(InvalidRequest, match="is succeeded and cannot be paused"):
            pause_job(s, org, done)
        with pytest.raises(InvalidRequest, match="is succeeded, not paused"):
            resume_job(s, org, done)
    fresh = _job(db, JobStatus.VALIDATING_FILES)  # queued follows it too: resume must not
    with session_scope(db) as s, pytest.raises(InvalidRequest, match="validating_files, not"):
        resume_job(s, org, fresh)
    with session_scope(db) as s:
        assert s.get(Job, fresh).status == "validating_files"


@pytest.mark.parametrize("method", ["dpo", "reward_model", "ppo", "grpo"])
def test_rlhf_methods_pause_like_supervised_ones(db, method):
    job_id = _job(db, JobStatus.RUNNING, method=method)
    with session_scope(db) as s:
        assert pause_job(s, _org(db, job_id), job_id).status == "paused"


def test_a_method_without_resume_state_cannot_pause(db, monkeypatch):
    """Every method resumes today; one added without resume state is refused, not paused
    into losing its progress."""
    import core.jobs.service

    monkeypatch.setattr(core.jobs.service, "RESUMABLE", frozenset({"supervised"}))
    job_id = _job(db, JobStatus.RUNNING, method="dpo")
    with session_scope(db) as s:
        with pytest.raises(InvalidRequest, match="^dpo jobs cannot be paused") as exc:
            pause_job(s, _org(db, job_id), job_id)
        assert exc.value.param == "method.type"
    with session_scope(db) as s:
        assert s.get(Job, job_id).status == "running"  # nothing moved


def test_pause_then_resume_requeues_and_the_reconciler_skips_paused_jobs(db):
    job_id = _job(db, JobStatus.RUNNING, method="classification")
    org = _org(db, job_id)
    with session_scope(db) as s:
        assert pause_job(s, org, job_id).status == "paused"
    with session_scope(db) as s:
        assert job_id not in {j.id for j in stale_jobs(s, older_than_s=-1)}
        job = resume_job(s, org, job_id)
        assert job.status == "queued" and job.enqueued_at is not None
    with session_scope(db) as s:
        assert job_id in {j.id for j in stale_jobs(s, older_than_s=-1)}
        assert _messages(s, job_id) == [
            "Fine-tuning job pause requested: saving a checkpoint",
            "Fine-tuning job resumed",
        ]
