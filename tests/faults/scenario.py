"""What every fault scenario does: submit a small job, watch it in the database, and check
that it ended whole — succeeded once, every step's metrics event exactly once, nothing
orphaned in storage or the temp directory."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from core.persistence.db import session_scope
from core.persistence.models import Job, JobEvent, Model
from tests.utils.faults import training_processes
from tests.utils.flows import LEARN_ADAPTER, capitals_jsonl
from tests.utils.waiting import wait_for

CHECKPOINT_EVERY = 4


def submit(stack, tmp: Path, n_epochs: int, metadata: dict | None = None) -> str:
    """A job of `n_epochs` steps (4 examples, batch 4) that checkpoints every 4 steps."""
    client = stack.client()
    f = client.files.create(
        file=capitals_jsonl(tmp / "train.jsonl").open("rb"), purpose="fine-tune"
    )
    hp = {
        "n_epochs": n_epochs,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "checkpoint_interval": CHECKPOINT_EVERY,
    }
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        seed=7,
        metadata=metadata,
        extra_body={
            "adapter": LEARN_ADAPTER,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        },
    )
    return job.id


def job(stack, job_id: str) -> Job:
    with session_scope(stack.db) as s:
        row = s.get(Job, job_id)
        s.expunge(row)
        return row


def events(stack, job_id: str) -> list[JobEvent]:
    with session_scope(stack.db) as s:
        rows = list(
            s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
        )
        for row in rows:
            s.expunge(row)
        return rows


def steps(stack, job_id: str) -> list[int]:
    return [e.data["step"] for e in events(stack, job_id) if e.type == "metrics"]


def wait_step(stack, job_id: str, step: int, timeout: float = 180) -> None:
    wait_for(lambda: max(steps(stack, job_id), default=0) >= step, timeout, f"{job_id} step {step}")


def wait_message(stack, job_id: str, prefix: str, timeout: float = 120, after: float = 0) -> float:
    """Seconds since the epoch at which an event starting with `prefix` was written."""

    def seen():
        for e in events(stack, job_id):
            if e.message.startswith(prefix) and e.created_at.timestamp() >= after:
                return e.created_at.timestamp()
        return None

    return wait_for(seen, timeout, f"{job_id}: event {prefix!r}")


def running_on(stack, job_id: str, timeout: float = 120) -> str:
    """The worker running the job, once one has claimed it."""

    def claimed():
        row = job(stack, job_id)
        return row.worker if row.status == "running" else None

    return wait_for(claimed, timeout, f"{job_id} running")


def assert_whole(stack, job_id: str, total: int, timeout: float = 240) -> Job:
    """Succeeded exactly once, each step recorded once, nothing orphaned, no temp files."""
    from core.cleanup import orphaned_keys

    done = wait_for(
        lambda: (r := job(stack, job_id)).status in ("succeeded", "failed", "cancelled") and r,
        timeout,
        f"{job_id} finished",
        interval=0.5,
    )
    assert done.status == "succeeded", (done.error, events(stack, job_id)[-5:])
    assert steps(stack, job_id) == list(range(1, total + 1))  # none lost, none repeated
    messages = [e.message for e in events(stack, job_id)]
    assert messages.count("The job has successfully completed") == 1
    with session_scope(stack.db) as s:
        models = list(
            s.scalars(select(Model).where(Model.job_id == job_id, Model.kind == "fine_tuned"))
        )
        assert [m.id for m in models] == [done.fine_tuned_model]
    wait_for(lambda: not training_processes(job_id), 30, "training process exited")
    storage = stack.storage()

    def clean() -> bool:  # the API's sweeper removes what the fault left, within seconds
        with session_scope(stack.db) as s:
            orphans = orphaned_keys(s, storage)
        temp = [p for p in Path(stack.env["TMPDIR"]).iterdir() if p.name.startswith("lathe-")]
        return not orphans and not temp and not _incomplete_uploads(stack)

    wait_for(clean, 30, "no orphaned objects, incomplete uploads or temp files")
    return done


def _incomplete_uploads(stack) -> list:
    import boto3

    client = boto3.client("s3", endpoint_url=stack.proxy.endpoint, region_name="us-east-1")
    return client.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", [])


def report(name: str, **seconds: float) -> None:
    """Recovery times, printed for the record (run with -s to see them)."""
    print(f"\nRECOVERY {name}: " + ", ".join(f"{k}={v:.1f}s" for k, v in seconds.items()))


now = time.time
