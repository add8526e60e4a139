"""Fair share on a real Postgres: a worker leaves a job queued while its organization already
runs its share, and takes another organization's; the queued quota refuses the job too many."""

from __future__ import annotations

import pytest

from core.auth import get_or_create_org
from core.errors import TooManyRequests
from core.ids import new_id
from core.jobs.queue_share import check_queue_quota
from core.jobs.states import JobStatus
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job
from core.runs.runner import _claim
from core.settings import Settings, get_settings


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    return pg_url


def _job(db: str, org: str, status: JobStatus) -> Job:
    with session_scope(db) as s:
        job = Job(
            id=new_id("ftjob-"),
            organization_id=get_or_create_org(s, org).id,
            model="m",
            base_model="m",
            status=status.value,
            spec={"method": {"type": "supervised"}},
            training_file="f",
            seed=1,
            result_files=[],
            attempts=0,
        )
        s.add(job)
    return job


def _status(db: str, job: Job) -> str:
    with session_scope(db) as s:
        return s.get(Job, job.id).status


def test_a_worker_leaves_an_org_over_its_share_queued_and_takes_another(db):
    share = get_settings().quotas.max_running_jobs_per_org
    worker = Settings(database={"url": db})
    for _ in range(share):
        _job(db, "hog", JobStatus.RUNNING)
    hogs_next, fair = _job(db, "hog", JobStatus.QUEUED), _job(db, "fair", JobStatus.QUEUED)
    assert _claim(worker, hogs_next, "w") is False
    assert _status(db, hogs_next) == "queued"  # left for later, not failed
    assert _claim(worker, fair, "w") is True
    assert _status(db, fair) == "running"
    with session_scope(db) as s:  # one of hog's jobs finishes: its next may start
        running = (
            s.query(Job)
            .filter_by(status="running", organization_id=hogs_next.organization_id)
            .first()
        )
        running.status = "succeeded"
    assert _claim(worker, hogs_next, "w") is True


def test_queued_quota_counts_waiting_jobs_only(db):
    settings = Settings(quotas={"max_queued_jobs_per_org": 2})
    for status in (JobStatus.QUEUED, JobStatus.PAUSED, JobStatus.RUNNING, JobStatus.FAILED):
        _job(db, "quota", status)
    with session_scope(db) as s:
        org_id = get_or_create_org(s, "quota").id
        with pytest.raises(TooManyRequests) as exc:
            check_queue_quota(s, org_id, settings)
        assert exc.value.code == "too_many_queued_jobs" and exc.value.retry_after > 0
        check_queue_quota(s, org_id, Settings(quotas={"max_queued_jobs_per_org": 3}))
