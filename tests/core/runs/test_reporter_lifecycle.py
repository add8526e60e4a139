"""The worker's reporter at the job's edges, on real Postgres and a real local store: after a
cancel it writes nothing (even when the cancel lands between its status polls) and stops
training; a pause still gets its step and checkpoint; a pruned checkpoint gets an event."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from core.auth import get_or_create_org
from core.jobs.service import cancel_job, create_job, pause_job
from core.jobs.states import JobStatus, transition
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Checkpoint, File, JobEvent, Model
from core.runs.reporter import JobReporter
from core.storage.local import LocalStorage

STEP = {"total_steps": 10, "train_loss": 1.0}


@pytest.fixture(scope="module")
def db(pg_url) -> str:
    upgrade(pg_url)
    with session_scope(pg_url) as s:
        if s.get(Model, "tiny-llama") is None:
            s.add(Model(id="tiny-llama", kind="base", base_model="tiny-llama"))
        org = get_or_create_org(s, "reporter-edges")
        if s.get(File, "file-reporter-edges") is None:
            s.add(
                File(id="file-reporter-edges", organization_id=org.id, filename="d.jsonl",
                     purpose="fine-tune", bytes=1, sha256="0", storage_key="k",
                     status="processed")
            )  # fmt: skip
    return pg_url


def _running_job(db: str) -> tuple[str, str]:
    with session_scope(db) as s:
        org = get_or_create_org(s, "reporter-edges")
        body = JobCreate(model="tiny-llama", training_file="file-reporter-edges")
        job = create_job(s, org.id, body)
        transition(s, job.id, JobStatus.QUEUED)
        assert transition(s, job.id, JobStatus.RUNNING)
        return org.id, job.id


def _messages(db: str, job_id: str) -> list[str]:
    with session_scope(db) as s:
        rows = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
        return [r.message for r in rows]


def _artifact(tmp_path: Path) -> Path:
    out = tmp_path / "artifact"
    out.mkdir(exist_ok=True)
    (out / "adapter_config.json").write_text("{}")
    return out


def test_after_a_cancel_nothing_is_written_and_training_stops(db, tmp_path):
    org, job_id = _running_job(db)
    storage = LocalStorage(tmp_path / "store")
    # A long poll interval: the cancel lands between two polls, as it does mid-step.
    reporter = JobReporter(db, job_id, poll_interval_s=3600, storage=storage)
    assert not reporter.should_stop()
    reporter.metrics({"step": 1, **STEP})
    with session_scope(db) as s:
        cancel_job(s, org, job_id)
    assert not reporter.should_stop()  # it has not polled yet ...
    reporter.metrics({"step": 2, **STEP})  # ... but the write sees the cancel
    reporter.message("Step 2: validation loss=1.0")
    reporter.checkpoint(2, _artifact(tmp_path), None, {"step": 2})
    assert reporter.should_stop() and not reporter.pausing()
    messages = _messages(db, job_id)
    assert messages[-1] == "Fine-tuning job cancelled"
    assert sum(m.startswith("Step ") for m in messages) == 1
    with session_scope(db) as s:
        assert s.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)).all() == []
    assert storage.list_keys("orgs") == []  # the checkpoint's uploaded bytes are gone too


def test_a_pause_still_records_its_step_and_checkpoint(db, tmp_path):
    org, job_id = _running_job(db)
    reporter = JobReporter(db, job_id, poll_interval_s=0, storage=LocalStorage(tmp_path / "s"))
    with session_scope(db) as s:
        pause_job(s, org, job_id)
    assert reporter.should_stop() and reporter.pausing()
    reporter.metrics({"step": 3, **STEP})
    reporter.checkpoint(3, _artifact(tmp_path), None, {"step": 3})
    messages = _messages(db, job_id)
    assert messages[-2].startswith("Step 3/10") and messages[-1].startswith("Checkpoint saved")


def test_a_pruned_checkpoint_is_announced(db, tmp_path):
    _, job_id = _running_job(db)
    storage = LocalStorage(tmp_path / "store")
    reporter = JobReporter(db, job_id, storage=storage, keep_checkpoints=1)
    reporter.checkpoint(1, _artifact(tmp_path), None, {"step": 1})
    reporter.checkpoint(2, _artifact(tmp_path), None, {"step": 2})
    with session_scope(db) as s:
        events = s.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
        ).all()
        first = events[-3].data["fine_tuned_model_checkpoint"]
        assert first.endswith(":ckpt-step-1") and s.get(Model, first) is None
        assert events[-1].data == {"pruned_checkpoint": first}
        assert "only the latest 1 are kept" in events[-1].message
    assert not any("/step-1/" in k for k in storage.list_keys("orgs"))
