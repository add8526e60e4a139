"""The runner resumes a PPO job that died mid-training from its latest checkpoint (SQLite +
local storage, in process): core.rlhf's resume state (value head, optimizer, RNG, step) goes
through the job's checkpoint store like a trainer's, and the job ends whole."""

from __future__ import annotations

import csv

import pytest
import torch
from sqlalchemy import select, update

from core.auth import get_or_create_org
from core.files import store_local_file
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Checkpoint, File, Job, JobEvent
from core.registry import sync_base_models
from core.runs.reporter import JobReporter
from core.runs.runner import run_job
from core.settings import Settings
from core.storage import get_storage
from tests.utils.rlhf import DIGIT_GRADER, QUESTIONS, prompt_rows, write_jsonl

HP = {
    "total_steps": 6,
    "batch_size": 4,
    "mini_batch_size": 2,
    "ppo_epochs": 1,
    "max_new_tokens": 4,
    "learning_rate": 1e-3,
    "checkpoint_interval": 3,
}


@pytest.fixture
def setup(tmp_path, model_cache):
    torch.set_num_threads(1)
    (tmp_path / "data").mkdir()
    settings = Settings(data_dir=tmp_path / "data", model_cache_dir=model_cache, device="cpu")
    url = settings.resolved_database_url
    upgrade(url)
    storage = get_storage(settings)
    with session_scope(url) as s:
        org = get_or_create_org(s, "rlhf-resume")
        sync_base_models(s, settings)
        path = write_jsonl(tmp_path / "prompts.jsonl", prompt_rows(QUESTIONS))
        f = store_local_file(
            s, storage, org.id, path, "fine-tune", format="prompts", n_examples=len(QUESTIONS)
        )
        spec = {
            "model": "tiny-llama",
            "training_file": f.id,
            "seed": 7,
            "adapter": {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0},
            "method": {"type": "ppo", "ppo": {"grader": DIGIT_GRADER, "hyperparameters": HP}},
        }
        job = create_job(s, org.id, JobCreate.model_validate(spec))
        return settings, storage, job.id


def _metrics_steps(session, job_id: str) -> list[int]:
    events = session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.type == "metrics")
        .order_by(JobEvent.seq)
    )
    return [e.data["step"] for e in events]


def test_a_ppo_job_that_died_resumes_from_its_checkpoint(setup, monkeypatch):
    settings, storage, job_id = setup
    url = settings.resolved_database_url
    real_metrics = JobReporter.metrics

    def dies_at_step_5(self, data):
        if data["step"] == 5:
            raise RuntimeError("worker lost")
        real_metrics(self, data)

    monkeypatch.setattr(JobReporter, "metrics", dies_at_step_5)
    run_job(settings, job_id)
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        # the user reads a code and the job id; the exception's text went to the log
        assert job.status == "failed" and job.error["code"] == "internal_error"
        assert job_id in job.error["message"] and "worker lost" not in job.error["message"]
        [ckpt] = s.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id))
        assert ckpt.step == 3
        for name in ("policy.safetensors", "value_head.safetensors", "optimizer.pt"):
            assert storage.exists(f"{ckpt.storage_key}/state/{name}")  # kept for a retry
        s.execute(update(Job).where(Job.id == job_id).values(status="queued", error=None))

    monkeypatch.setattr(JobReporter, "metrics", real_metrics)
    run_job(settings, job_id)
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job.status == "succeeded", job.error
        messages = [e.message for e in s.scalars(select(JobEvent).where(JobEvent.job_id == job_id))]
        assert "Resuming from the checkpoint at step 3" in messages
        steps = _metrics_steps(s, job_id)
        # the re-run trains 4-6 (4 had run before the crash: unique-per-step events may keep
        # one of its two reports), and nothing before its checkpoint
        assert steps[:3] == [1, 2, 3] and steps[-3:] == [4, 5, 6] and set(steps) == set(range(1, 7))
        steps = [c.step for c in s.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id))]
        assert sorted(steps) == [3, 6]
        results = s.get(File, job.result_files[0])
    path = storage.download(results.storage_key, settings.data_dir / "step_metrics.csv")
    rows = list(csv.DictReader(path.open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))  # the whole run, both halves
