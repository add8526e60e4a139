"""One job across several processes (torch.distributed on gloo, as `lathe worker --gpus N` runs
on a CPU machine), through the real supervisor, training process and launcher (SQLite + local
storage): the same job on 1 and 2 processes trains the same steps to the same losses (DDP for
an adapter, FSDP for a full fine-tune, whose consolidated artifact loads and generates); a rank
that dies takes the whole run down and the job is retried; a cancel ends every rank."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.auth import get_or_create_org
from core.files import store_local_file
from core.jobs.service import cancel_job, create_job
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, JobEvent
from core.registry import sync_base_models
from core.runs.runner import run_job
from core.runs.supervisor import supervise
from core.settings import Settings
from core.storage import get_storage
from tests.utils.faults import training_processes
from tests.utils.flows import LEARN_ADAPTER, capitals_jsonl

# Gradients are averaged over ranks instead of summed in one batch, in another float order:
# the curves agree to rounding, far inside this (one step of training moves the loss ~10%).
LOSS_RTOL = 1e-3
pytestmark = pytest.mark.slow  # trains six short runs, four of them on two processes


@pytest.fixture
def make_job(tmp_path, model_cache, monkeypatch):
    """Settings go through the environment: the training processes read their own."""
    env = {
        "LATHE_DATA_DIR": str(tmp_path / "data"),
        "LATHE_MODEL_CACHE_DIR": str(model_cache),
        "LATHE_DEVICE": "cpu",
        "LATHE_MAX_ATTEMPTS": "2",
        "LATHE_LEASE_HEARTBEAT_S": "0.5",
        "LATHE_CANCEL_GRACE_S": "2",
        "OMP_NUM_THREADS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "data").mkdir()
    settings = Settings()
    upgrade(settings.resolved_database_url)

    def make(gpus: int, adapter: dict, *, epochs: int = 2, every: str | int = "auto", **extra):
        with session_scope(settings.resolved_database_url) as s:
            org = get_or_create_org(s, "dist")
            sync_base_models(s, settings)
            f = store_local_file(
                s, get_storage(settings), org.id, capitals_jsonl(tmp_path / "t.jsonl"),
                "fine-tune", format="chat", n_examples=4,
            )  # fmt: skip
            hp = {"n_epochs": epochs, "batch_size": 4, "learning_rate": 3e-3}
            hp["checkpoint_interval"] = every
            spec = {
                "model": "tiny-llama",
                "training_file": f.id,
                "seed": 7,
                "adapter": adapter,
                "resources": {"gpus": gpus},
                "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
                **extra,
            }
            return create_job(s, org.id, JobCreate.model_validate(spec)).id

    return settings, make


def _events(settings: Settings, job_id: str) -> list[JobEvent]:
    with session_scope(settings.resolved_database_url) as s:
        rows = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id)))
        s.expunge_all()
    return rows


def _job(settings: Settings, job_id: str) -> Job:
    with session_scope(settings.resolved_database_url) as s:
        job = s.get(Job, job_id)
        s.expunge(job)
    return job


def _curve(settings: Settings, job_id: str) -> list[tuple[int, float]]:
    return [(e.step, e.data["train_loss"]) for e in _events(settings, job_id) if e.step]


def _run(settings: Settings, job_id: str) -> Job:
    assert supervise(settings, job_id, "lathe@test", lambda: False) == []
    return _job(settings, job_id)


def _reference(settings: Settings, job_id: str) -> Job:
    """The one-process run, in this process (it only serves as the reference)."""
    assert run_job(settings, job_id) == []
    return _job(settings, job_id)


def _same_curve(one: list, two: list) -> None:
    assert [s for s, _ in one] == [s for s, _ in two] and one
    for (_, a), (_, b) in zip(one, two, strict=True):
        assert b == pytest.approx(a, rel=LOSS_RTOL)


def test_ddp_on_two_processes_trains_as_one(make_job):
    settings, make = make_job
    single, double = make(1, LEARN_ADAPTER), make(2, LEARN_ADAPTER)
    assert _reference(settings, single).status == "succeeded"
    job = _run(settings, double)
    assert job.status == "succeeded", job.error
    _same_curve(_curve(settings, single), _curve(settings, double))
    assert job.trained_tokens == _job(settings, single).trained_tokens
    started = [e.data for e in _events(settings, double) if (e.data or {}).get("strategy")]
    assert started == [{"world_size": 2, "strategy": "ddp"}]


def _load(settings: Settings, job: Job):
    from core.model_store import ModelStore, StoredModel
    from core.persistence.models import Model

    with session_scope(settings.resolved_database_url) as s:
        stored = StoredModel.of(s.get(Model, job.fine_tuned_model))
    return ModelStore(settings, get_storage(settings)).load(stored)


FSDP_ON_CPU = {"world_size": 2, "strategy": "ddp", "asked": "fsdp"}
"""The start event of an fsdp job on these CPU processes: accelerate shards only on
accelerators, so the job says it keeps full replicas (core.training.distributed._can_shard);
these tests prove the fsdp path's plumbing (arguments, consolidated save, every rank's resume
files), not sharding, which needs two GPUs."""


def test_fsdp_full_fine_tune_on_two_processes_trains_as_one_and_serves(make_job):
    import torch

    settings, make = make_job
    full = {"type": "full"}
    single = make(1, full, epochs=1)
    sharded = make(2, full, epochs=1, distributed={"strategy": "fsdp"})
    assert _reference(settings, single).status == "succeeded"
    job = _run(settings, sharded)
    assert job.status == "succeeded", job.error
    _same_curve(_curve(settings, single), _curve(settings, sharded))
    started = [e.data for e in _events(settings, sharded) if (e.data or {}).get("strategy")]
    assert started == [FSDP_ON_CPU]
    # The artifact holds the consolidated weights: those one process trained, and it generates.
    model, tokenizer = _load(settings, job)
    reference, _ = _load(settings, _job(settings, single))
    weights, expected = model.state_dict(), reference.state_dict()
    assert weights.keys() == expected.keys()
    for name, value in weights.items():
        assert torch.allclose(value, expected[name], atol=1e-4), name
    prompt = tokenizer("What is the capital of France?", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 3


def _rank_pids(job_id: str) -> dict[int, int]:
    """rank → pid of the job's live training processes."""
    ranks = {}
    for pid in training_processes(job_id):
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        env = dict(v.split(b"=", 1) for v in raw.split(b"\0") if b"=" in v)
        ranks[int(env.get(b"RANK", b"0"))] = pid
    return ranks


def _until(what, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def _in_thread(settings: Settings, job_id: str) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(
        target=lambda: out.append(supervise(settings, job_id, "lathe@test", lambda: False))
    )
    thread.start()
    return thread, out


def test_a_dead_rank_retries_the_whole_job_and_a_cancel_ends_every_rank(make_job):
    settings, make = make_job
    job_id = make(2, LEARN_ADAPTER, epochs=200, every=2)
    thread, out = _in_thread(settings, job_id)
    _until(lambda: max((s for s, _ in _curve(settings, job_id)), default=0) >= 3)
    os.kill(_until(lambda: _rank_pids(job_id).get(1)), signal.SIGKILL)
    thread.join(240)
    assert out == [[job_id]]  # handed back to the queue: the whole run is retried
    assert not training_processes(job_id)  # rank 0 did not outlive rank 1
    job = _job(settings, job_id)
    assert job.status == "queued" and job.attempts == 1
    assert any("attempt 2 of 2" in e.message for e in _events(settings, job_id))

    thread, out = _in_thread(settings, job_id)  # attempt 2: resumes, then is cancelled
    resumed = _until(lambda: [e for e in _events(settings, job_id) if "Resuming" in e.message])
    step = resumed[0].data["step"]
    _until(lambda: len(_rank_pids(job_id)) == 2 and _curve(settings, job_id)[-1][0] > step)
    with session_scope(settings.resolved_database_url) as s:
        cancel_job(s, _job(settings, job_id).organization_id, job_id, get_storage(settings))
    thread.join(240)
    assert out == [[]] and _job(settings, job_id).status == "cancelled"
    assert not training_processes(job_id)
