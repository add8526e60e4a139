"""Leases on real Postgres: a renewal only extends its own run's lease, an expired lease is
taken back once (or fails the job when its attempts are used up), and `running → queued` is
never taken by a plain transition."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.jobs.states import JobStatus, transition
from core.persistence.db import session_scope
from core.persistence.models import Job, JobEvent, utcnow
from core.runs.lease import expired, expired_jobs, hand_back, renew, take_back
from tests.core.jobs.test_states import _job


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    from core.persistence.migrate import upgrade

    upgrade(pg_url)
    return pg_url


def _running(db: str, attempts: int, lease_in_s: float) -> str:
    job_id = _job(db, JobStatus.RUNNING)
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        job.attempts, job.worker = attempts, "lathe@dead"
        job.lease_expires_at = utcnow() + timedelta(seconds=lease_in_s)
    return job_id


def _events(db: str, job_id: str) -> list[str]:
    with session_scope(db) as s:
        return list(s.scalars(select(JobEvent.message).where(JobEvent.job_id == job_id)))


def test_renewal_extends_only_its_own_runs_lease(db):
    job_id = _running(db, attempts=2, lease_in_s=-1)
    with session_scope(db) as s:
        assert not renew(s, job_id, attempt=1, timeout_s=60)  # an older run of the job
        assert renew(s, job_id, attempt=2, timeout_s=60)
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        assert not expired(job) and job.id not in {j.id for j in expired_jobs(s)}


def test_expired_lease_is_taken_back_once_and_requeued(db):
    job_id = _running(db, attempts=1, lease_in_s=-1)
    with session_scope(db) as s:
        [job] = [j for j in expired_jobs(s) if j.id == job_id]
        assert take_back(s, job, max_attempts=3)
        assert not take_back(s, job, max_attempts=3)  # a second reconciler loses
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        assert job.status == "queued" and job.lease_expires_at is None
    [message] = [m for m in _events(db, job_id) if "lease" in m]
    assert "lathe@dead" in message and "attempt 2 of 3" in message


def test_a_renewal_that_landed_wins_over_the_take_back(db):
    job_id = _running(db, attempts=1, lease_in_s=-1)
    with session_scope(db) as s:
        [job] = [j for j in expired_jobs(s) if j.id == job_id]
        s.expunge(job)
    with session_scope(db) as s:
        assert renew(s, job_id, attempt=1, timeout_s=60)  # the worker was only slow
    with session_scope(db) as s:
        assert not take_back(s, job, max_attempts=3)
        assert s.get(Job, job_id).status == "running"


def test_the_last_attempt_fails_the_job_saying_why(db):
    job_id = _running(db, attempts=3, lease_in_s=-1)
    with session_scope(db) as s:
        assert not take_back(s, s.get(Job, job_id), max_attempts=3)
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and job.error["code"] == "worker_lost"
        assert "LATHE_MAX_ATTEMPTS" in job.error["message"]


def test_running_to_queued_only_when_asked_for_by_name(db):
    job_id = _running(db, attempts=1, lease_in_s=60)
    with session_scope(db) as s:
        assert not transition(s, job_id, JobStatus.QUEUED)  # e.g. a racing resume
        assert s.get(Job, job_id).status == "running"
    with session_scope(db) as s:
        assert not hand_back(s, job_id, 2, "not this run", refund=True)
        assert hand_back(s, job_id, 1, "The worker is shutting down", refund=True)
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        assert job.status == "queued" and job.attempts == 0  # a hand-back costs no attempt
