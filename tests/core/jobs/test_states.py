"""The state machine decides races in the database: exactly one contender wins."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from core.auth import get_or_create_org
from core.jobs.states import TERMINAL, TRANSITIONS, JobStatus, predecessors, transition
from core.persistence.db import get_sessionmaker, session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    return pg_url


def _job(db: str, status: JobStatus) -> str:
    with session_scope(db) as s:
        org = get_or_create_org(s, "states")
        job = Job(
            id=f"ftjob-{threading.get_ident()}-{id(s)}",
            organization_id=org.id,
            model="m",
            base_model="m",
            status=status.value,
            spec={},
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
