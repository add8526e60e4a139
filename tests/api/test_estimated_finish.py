"""`estimated_finish` on the job object read with the SDK: a running job of the stack's
organization, its steps written to the stack's database as a worker's reporter writes them."""

from __future__ import annotations

from datetime import timedelta

from core.auth import get_or_create_org
from core.ids import new_id
from core.persistence.db import session_scope
from core.persistence.models import Job, JobEvent, utcnow


def _running_job(url: str, steps: int, total: int) -> tuple[str, int]:
    """A job started 60 s ago with `steps` metrics events 5 s apart; (id, expected finish)."""
    started = utcnow() - timedelta(seconds=60)
    with session_scope(url) as s:
        job = Job(
            id=new_id("ftjob-"),
            organization_id=get_or_create_org(s, "acme").id,
            model="tiny-llama",
            base_model="tiny-llama",
            status="running",
            spec={
                "model": "tiny-llama",
                "training_file": "file-x",
                "method": {"type": "supervised"},
            },
            training_file="file-x",
            seed=1,
            result_files=[],
            started_at=started,
        )
        s.add(job)
        for step in range(1, steps + 1):
            s.add(
                JobEvent(
                    id=new_id("ftevent-"),
                    job_id=job.id,
                    type="metrics",
                    message=f"Step {step}/{total}",
                    data={"step": step, "total_steps": total, "train_loss": 1.0},
                    created_at=started + timedelta(seconds=5 * step),
                )
            )
        job_id = job.id
    finish = started + timedelta(seconds=5 * steps + 5 * (total - steps))
    return job_id, int(finish.timestamp())


def test_a_running_job_reads_back_its_estimated_finish(stack):
    client = stack.client()
    job_id, expected = _running_job(stack.env["LATHE_DATABASE_URL"], steps=4, total=10)
    assert client.fine_tuning.jobs.retrieve(job_id).estimated_finish == expected
    listed = {j.id: j for j in client.fine_tuning.jobs.list(limit=100).data}
    assert listed[job_id].estimated_finish == expected
    fresh, _ = _running_job(stack.env["LATHE_DATABASE_URL"], steps=0, total=10)
    assert client.fine_tuning.jobs.retrieve(fresh).estimated_finish is None  # no step yet
    client.fine_tuning.jobs.cancel(job_id)
    assert client.fine_tuning.jobs.retrieve(job_id).estimated_finish is None  # terminal
