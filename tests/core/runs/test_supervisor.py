"""The supervisor against a real training process (SQLite + local storage): a crashed run is
retried while attempts remain and then fails saying why; a run past LATHE_JOB_TIMEOUT_S is
ended (even stuck in a step that ignores SIGTERM) and fails. The worker survives both."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.auth import get_or_create_org
from core.files import store_local_file
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, JobEvent
from core.registry import sync_base_models
from core.runs.supervisor import supervise
from core.settings import Settings
from core.storage import get_storage
from tests.utils.faults import training_processes
from tests.utils.flows import LEARN_ADAPTER, capitals_jsonl


@pytest.fixture
def make_job(tmp_path, model_cache, monkeypatch):
    """Settings go through the environment: the training process reads its own."""
    env = {
        "LATHE_DATA_DIR": str(tmp_path / "data"),
        "LATHE_MODEL_CACHE_DIR": str(model_cache),
        "LATHE_DEVICE": "cpu",
        "LATHE_FAULT_INJECTION": "true",
        "LATHE_MAX_ATTEMPTS": "2",
        "LATHE_LEASE_HEARTBEAT_S": "0.5",
        "LATHE_CANCEL_GRACE_S": "1",
        "OMP_NUM_THREADS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "data").mkdir()

    def make(metadata: dict) -> tuple[Settings, str]:
        settings = Settings()
        url = settings.resolved_database_url
        upgrade(url)
        with session_scope(url) as s:
            org = get_or_create_org(s, "supervised")
            sync_base_models(s, settings)
            f = store_local_file(
                s, get_storage(settings), org.id, capitals_jsonl(tmp_path / "t.jsonl"),
                "fine-tune", format="chat", n_examples=4,
            )  # fmt: skip
            hp = {"n_epochs": 6, "batch_size": 4, "checkpoint_interval": 100}
            spec = {
                "model": "tiny-llama",
                "training_file": f.id,
                "adapter": LEARN_ADAPTER,
                "metadata": metadata,
                "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            }
            return settings, create_job(s, org.id, JobCreate.model_validate(spec)).id

    return make


def _job(settings: Settings, job_id: str) -> tuple[Job, list[str]]:
    with session_scope(settings.resolved_database_url) as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        events = list(s.scalars(select(JobEvent.message).where(JobEvent.job_id == job_id)))
    return job, events


def test_a_crashed_run_is_retried_then_fails_on_its_last_attempt(make_job):
    settings, job_id = make_job({"lathe_fault_crash_step": "2"})
    assert supervise(settings, job_id, "lathe@test", lambda: False) == [job_id]  # re-enqueue
    job, events = _job(settings, job_id)
    assert job.status == "queued" and job.attempts == 1
    assert any("killed by SIGKILL" in m and "attempt 2 of 2" in m for m in events)
    assert supervise(settings, job_id, "lathe@test", lambda: False) == []
    job, _ = _job(settings, job_id)
    assert job.status == "failed" and job.attempts == 2
    assert job.error["code"] == "training_crashed"
    assert "SIGKILL" in job.error["message"] and "LATHE_MAX_ATTEMPTS" in job.error["message"]


def test_a_run_past_the_job_timeout_is_ended_and_fails(make_job, monkeypatch):
    monkeypatch.setenv("LATHE_JOB_TIMEOUT_S", "5")
    settings, job_id = make_job({"lathe_fault_hang_step": "1"})
    assert supervise(settings, job_id, "lathe@test", lambda: False) == []
    job, _ = _job(settings, job_id)
    assert job.status == "failed" and job.error["code"] == "job_timeout"
    assert not training_processes(job_id)
