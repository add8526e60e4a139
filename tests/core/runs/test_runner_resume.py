"""The runner resumes a job that died mid-training from its latest checkpoint (SQLite + local
storage, in process): the re-run trains only the remaining steps and the job ends whole."""

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
from core.persistence.models import Checkpoint, File, Job, JobEvent, Model
from core.registry import sync_base_models
from core.runs.reporter import JobReporter
from core.runs.runner import run_job
from core.settings import Settings
from core.storage import get_storage
from tests.utils.flows import LEARN_ADAPTER, capitals_jsonl

HP = {
    "n_epochs": 12,
    "batch_size": 4,
    "learning_rate": 3e-3,
    "checkpoint_interval": 4,
    "eval_interval": 4,
}


@pytest.fixture
def setup(tmp_path, model_cache):
    torch.set_num_threads(1)
    (tmp_path / "data").mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        model_cache_dir=model_cache,
        device="cpu",
        jobs={"max_checkpoints": 2},
    )
    url = settings.resolved_database_url
    upgrade(url)
    storage = get_storage(settings)
    with session_scope(url) as s:
        org = get_or_create_org(s, "resume")
        sync_base_models(s, settings)
        f = store_local_file(
            s,
            storage,
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
                    "validation_file": f.id,
                    "seed": 7,
                    "adapter": LEARN_ADAPTER,
                    "method": {"type": "supervised", "supervised": {"hyperparameters": HP}},
                }
            ),
        )
        return settings, storage, job.id


def test_a_failed_run_resumes_from_its_latest_checkpoint(setup, monkeypatch):
    settings, storage, job_id = setup
    url = settings.resolved_database_url
    real_metrics = JobReporter.metrics

    def dies_at_step_6(self, data):
        if data["step"] == 6:
            raise RuntimeError("worker lost")
        real_metrics(self, data)

    monkeypatch.setattr(JobReporter, "metrics", dies_at_step_6)
    run_job(settings, job_id)
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        # the user reads a code and the job id; the exception's text went to the log
        assert job.status == "failed" and job.error["code"] == "internal_error"
        assert job_id in job.error["message"] and "worker lost" not in job.error["message"]
        assert job.hyperparameters["checkpoint_interval"] == 4  # recorded as training began
        [ckpt] = s.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id))
        assert ckpt.step == 4
        assert storage.exists(f"{ckpt.storage_key}/state/optimizer.pt")  # kept for a retry
        # what a retry does: back to the queue
        s.execute(update(Job).where(Job.id == job_id).values(status="queued", error=None))

    monkeypatch.setattr(JobReporter, "metrics", real_metrics)
    run_job(settings, job_id)
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job.status == "succeeded", job.error
        messages = [e.message for e in s.scalars(select(JobEvent).where(JobEvent.job_id == job_id))]
        assert "Resuming from the checkpoint at step 4" in messages
        steps = [
            e.data["step"]
            for e in s.scalars(
                select(JobEvent)
                .where(JobEvent.job_id == job_id, JobEvent.type == "metrics")
                .order_by(JobEvent.seq)
            )
        ]
        # step 5 ran twice (6 died before its event), but its metrics event is recorded once
        assert steps == list(range(1, 13))
        assert job.attempts == 2
        checkpoints = list(
            s.scalars(
                select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step)
            )
        )
        assert [c.step for c in checkpoints] == [8, 12]  # max_checkpoints=2: step 4 pruned
        assert not storage.list_keys(checkpoints[0].storage_key.rsplit("/", 1)[0] + "/step-4")
        assert not any(
            storage.exists(f"{c.storage_key}/state/trainer_state.json") for c in checkpoints
        )  # succeeded: nothing will resume it
        assert s.get(Model, checkpoints[-1].fine_tuned_model_checkpoint).kind == "checkpoint"
        results = s.get(File, job.result_files[0])
    path = storage.download(results.storage_key, settings.data_dir / "step_metrics.csv")
    rows = list(csv.DictReader(path.open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))  # the whole run, both halves
    assert [int(r["step"]) for r in rows if r["valid_loss"]] == [4, 8, 12]
