"""A job that cannot run on the worker fails at once, saying why: QLoRA on a worker whose
bitsandbytes has no 4-bit backend for its device is never trained in full precision instead,
and a stored spec that no longer parses is routed and failed naming its field, not left in the
queue (SQLite + local storage, in process)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.adapters import quantization
from core.auth import get_or_create_org
from core.files import store_local_file
from core.jobs.placement import job_queue
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, JobEvent, Model
from core.registry import sync_base_models
from core.runs.runner import run_job
from core.settings import Settings
from core.storage import get_storage
from tests.utils.flows import capitals_jsonl


@pytest.fixture
def qlora_job(tmp_path, model_cache):
    (tmp_path / "data").mkdir()
    settings = Settings(data_dir=tmp_path / "data", model_cache_dir=model_cache, device="cpu")
    url = settings.resolved_database_url
    upgrade(url)
    with session_scope(url) as s:
        org = get_or_create_org(s, "no-gpu")
        sync_base_models(s, settings)
        f = store_local_file(
            s,
            get_storage(settings),
            org.id,
            capitals_jsonl(tmp_path / "train.jsonl"),
            "fine-tune",
            format="chat",
            n_examples=4,
        )
        job = create_job(
            s,
            org.id,
            JobCreate.model_validate(
                {
                    "model": "tiny-llama",
                    "training_file": f.id,
                    "adapter": {"type": "qlora"},
                }
            ),
        )
        return settings, job.id


def test_qlora_without_a_4bit_backend_fails_the_job_with_the_reason(qlora_job, monkeypatch):
    settings, job_id = qlora_job
    monkeypatch.setattr(
        quantization,
        "qlora_unavailable_reason",
        lambda device: f"bitsandbytes has no working 4-bit backend for {device!r}",
    )
    run_job(settings, job_id)
    with session_scope(settings.resolved_database_url) as s:
        job = s.get(Job, job_id)
        assert job.status == "failed"
        assert job.error == {
            "code": "unsupported_on_worker",
            "param": "adapter.type",
            "message": "qlora is not available on device 'cpu': bitsandbytes has no working "
            "4-bit backend for 'cpu'",
        }
        events = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id)))
        assert not [e for e in events if e.type == "metrics"]  # not one step was trained
        assert s.scalars(select(Model).where(Model.job_id == job_id)).first() is None


def test_a_stored_spec_that_no_longer_parses_fails_the_job_naming_the_field(qlora_job):
    settings, job_id = qlora_job
    with session_scope(settings.resolved_database_url) as s:  # as another release stored it
        job = s.get(Job, job_id)
        job.spec = {**job.spec, "adapter": {"type": "dora"}}
    assert job_queue(settings, job_id) == settings.broker.queue_name
    run_job(settings, job_id)
    with session_scope(settings.resolved_database_url) as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and job.error["code"] == "invalid_spec"
        assert job.error["param"] == "adapter.type" and "no longer parses" in job.error["message"]
