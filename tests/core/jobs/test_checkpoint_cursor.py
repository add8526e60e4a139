"""The checkpoints list's `after` cursor is scoped to the job (hence the organization): another
organization's checkpoint id is a 404 naming `after`, never a change in the page (an oracle
telling that the id exists)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.auth import get_or_create_org
from core.errors import NotFound
from core.ids import new_id
from core.jobs.service import list_checkpoints
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Checkpoint, Job, utcnow


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    return pg_url


def _job_with_checkpoints(db: str, org: str, steps: list[int]) -> tuple[str, str, list[str]]:
    with session_scope(db) as s:
        org_id = get_or_create_org(s, org).id
        job = Job(
            id=new_id("ftjob-"),
            organization_id=org_id,
            model="m",
            base_model="m",
            status="running",
            spec={},
            training_file="f",
            seed=1,
            result_files=[],
        )
        s.add(job)
        s.flush()
        ids = []
        for step in steps:
            ckpt = Checkpoint(
                id=new_id("ftckpt_"),
                job_id=job.id,
                step=step,
                storage_key=f"k/{step}",
                fine_tuned_model_checkpoint=f"ft:m:{org}:x:{job.id}:ckpt-step-{step}",
                created_at=utcnow() + timedelta(seconds=step),
            )
            s.add(ckpt)
            ids.append(ckpt.id)
        return org_id, job.id, ids


def test_after_pages_within_the_job_and_refuses_other_ids(db):
    org, job, mine = _job_with_checkpoints(db, "cursor-a", [1, 2, 3])
    _, other_job, theirs = _job_with_checkpoints(db, "cursor-b", [5])
    with session_scope(db) as s:
        rows, more = list_checkpoints(s, org, job, None, 2)
        assert [r.step for r in rows] == [3, 2] and more
        rows, more = list_checkpoints(s, org, job, rows[-1].id, 2)
        assert [r.step for r in rows] == [1] and not more
        for foreign in (theirs[0], "ftckpt_nope"):  # exists elsewhere, or nowhere: the same
            with pytest.raises(NotFound) as exc:
                list_checkpoints(s, org, job, foreign, 2)
            assert exc.value.param == "after"
        with pytest.raises(NotFound):  # and the other org's job itself is not found
            list_checkpoints(s, org, other_job, None, 2)
