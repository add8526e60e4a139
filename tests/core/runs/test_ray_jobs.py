"""One job across two hosts on a real local Ray cluster (a head and a second node, one CPU each,
gloo), through the real supervisor, the Ray Job Submission API and a Ray Train gang (SQLite +
local storage, which both nodes share; each node has its own temp directory and model cache, as
separate hosts do): a 2-node LoRA run trains to the losses of a 1-process run (within 1e-3
relative); an FSDP full fine-tune across the nodes is paused (the Ray job ends, the checkpoint
holds every rank's own files, not only rank 0's folder), resumed (each node's rank fetches that
checkpoint itself; every step trained once), and loads and generates, the rank away from rank 0
having built its base weights on its own node; a cancel leaves no Ray job running; losing the
second node mid-run fails the Ray job, and the job is retried from its checkpoint (fetched by
each node's rank itself) and succeeds once the node is back; a worker's shutdown hands the run
back with a checkpoint (the Ray job STOPPED); a dead worker's Ray job ends once the lease
lapses, and the job is taken back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.jobs.checkpoints import latest_checkpoint
from core.jobs.service import cancel_job, pause_job, resume_job
from core.persistence.db import session_scope
from core.retry import db_retry
from core.runs import ray_submit
from core.runs.runner import admit
from core.runs.supervisor import supervise
from core.settings import Settings
from core.storage import get_storage
from tests.core.runs.test_distributed import (
    FSDP_ON_CPU,
    _curve,
    _events,
    _in_thread,
    _job,
    _load,
    _reference,
    _run,
    _same_curve,
    _until,
    make_job,  # noqa: F401  (the fixture the cases use)
)
from tests.utils.flows import LEARN_ADAPTER

pytestmark = pytest.mark.slow  # a Ray cluster and eight Ray jobs

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def ray_cluster(model_cache):
    """The one Ray cluster of the session (a head and a second node)."""
    pytest.importorskip("ray")
    from tests.utils.ray_cluster import local_ray

    with local_ray(head_models=model_cache) as cluster:
        yield cluster


@pytest.fixture
def on_ray(make_job, ray_cluster, monkeypatch):  # noqa: F811
    for key, value in {
        "LATHE_RAY_ADDRESS": ray_cluster.address,
        "LATHE_RAY_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),  # the Ray workers import this checkout's Lathe
        "LATHE_CANCEL_GRACE_S": "10",
    }.items():
        monkeypatch.setenv(key, value)
    from core.settings import get_settings

    get_settings.cache_clear()
    settings, make = make_job
    yield Settings(), make, ray_cluster
    get_settings.cache_clear()


def _ray_jobs(settings: Settings, job_id: str) -> list:
    return ray_submit.lathe_jobs(ray_submit.client(settings), job_id)


def test_two_nodes_train_as_one_process(on_ray):
    settings, make, _ = on_ray
    single = make(1, LEARN_ADAPTER)
    double = make(1, LEARN_ADAPTER, resources={"nodes": 2})
    assert _reference(settings, single).status == "succeeded"
    job = _run(settings, double)
    assert job.status == "succeeded", job.error
    _same_curve(_curve(settings, single), _curve(settings, double))
    assert job.trained_tokens == _job(settings, single).trained_tokens
    events = _events(settings, double)
    [submitted] = [e.data for e in events if (e.data or {}).get("ray_submission_id")]
    assert submitted["nodes"] == 2 and submitted["gpus_per_node"] == 1
    [ray_job] = _ray_jobs(settings, double)
    assert ray_job.submission_id == submitted["ray_submission_id"]
    assert ray_job.status == "SUCCEEDED" and double in ray_job.entrypoint
    started = [e.data for e in events if (e.data or {}).get("strategy")]
    assert started == [{"world_size": 2, "strategy": "ddp"}]


def _ray_logs(settings: Settings, job_id: str) -> str:
    ray = ray_submit.client(settings)
    return "".join(ray.get_job_logs(j.submission_id) for j in _ray_jobs(settings, job_id))


FSDP_EPOCHS = 6  # 4 examples, batch 4: one step per epoch


def _state_files(settings: Settings, job_id: str) -> tuple[int, set[str]]:
    """The latest checkpoint's step and the names of the files of its stored resume state."""
    with session_scope(settings.resolved_database_url) as s:
        latest = latest_checkpoint(s, job_id)
        step, prefix = latest.step, latest.storage_key
    return step, {k.rsplit("/", 1)[1] for k in get_storage(settings).list_keys(f"{prefix}/state")}


def test_fsdp_across_two_nodes_pauses_resumes_and_generates(on_ray, monkeypatch):
    """Pause and resume across hosts, with the checkpoint every rank wrote: each rank's own
    files (rank 1's RNG state, FSDP's shards on a GPU cluster) are in storage, the resumed run
    trains every step once, on both nodes, and the consolidated model loads and generates.
    The pause comes as soon as rank 0 claimed the job, so the gang notices it at the first
    step boundary (every step of a tiny model takes a blink: a pause asked later would land
    at a step no test can foresee); the worker gives it all the time loading takes."""
    _, make, cluster = on_ray
    monkeypatch.setenv("LATHE_STOP_GRACE_S", "120")
    settings = Settings()
    job_id = make(
        1,
        {"type": "full"},
        epochs=FSDP_EPOCHS,
        every=1000,  # the pause's is the only checkpoint
        resources={"nodes": 2},
        distributed={"strategy": "fsdp"},
    )
    thread, out = _in_thread(settings, job_id)
    _until(lambda: _job(settings, job_id).status == "running")
    org = _job(settings, job_id).organization_id
    with session_scope(settings.resolved_database_url) as s:
        pause_job(s, org, job_id)
    thread.join(240)
    assert out == [[]] and _job(settings, job_id).status == "paused"
    events = _events(settings, job_id)
    [paused] = [e for e in events if e.message.startswith("Fine-tuning job paused at")]
    step = paused.data["step"]
    assert 0 < step < FSDP_EPOCHS
    [ray_job] = _ray_jobs(settings, job_id)
    assert ray_job.status.is_terminal()  # the pause ended the Ray job
    # Every rank's own files reached the checkpoint, not only rank 0's folder.
    saved, files = _state_files(settings, job_id)
    assert saved == step and {"trainer_state.json", "rng_state_0.pth", "rng_state_1.pth"} <= files

    with session_scope(settings.resolved_database_url) as s:
        resume_job(s, org, job_id)
    job = _run(settings, job_id)
    assert job.status == "succeeded", job.error
    events = _events(settings, job_id)
    assert any(e.message == f"Resuming from the checkpoint at step {step}" for e in events)
    assert [s for s, _ in _curve(settings, job_id)] == list(range(1, FSDP_EPOCHS + 1))
    started = [e.data for e in events if (e.data or {}).get("strategy")]
    assert started == [FSDP_ON_CPU] * 2
    # The rank on the node away from rank 0 fetched its start weights and the resume state
    # (every rank's files) on its own node.
    logs = _ray_logs(settings, job_id)
    assert "rank 1 fetched its own start weights" in logs and f"/checkpoint-{step} into " in logs
    assert (cluster.node_dirs[1]["models"] / "tiny-llama" / "config.json").exists()
    model, tokenizer = _load(settings, job)  # the consolidated full model
    prompt = tokenizer("What is the capital of France?", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 3


def _trained(settings: Settings, job_id: str, past: int = 0) -> bool:
    return max((s for s, _ in _curve(settings, job_id)), default=0) > past


def test_cancel_leaves_no_ray_job_running(on_ray):
    settings, make, _ = on_ray
    job_id = make(1, LEARN_ADAPTER, epochs=500, resources={"nodes": 2})
    thread, out = _in_thread(settings, job_id)
    _until(lambda: _trained(settings, job_id, 2))
    with session_scope(settings.resolved_database_url) as s:
        cancel_job(s, _job(settings, job_id).organization_id, job_id, get_storage(settings))
    thread.join(240)
    assert out == [[]] and _job(settings, job_id).status == "cancelled"
    [ray_job] = _ray_jobs(settings, job_id)
    assert ray_job.status.is_terminal()


def test_a_lost_node_restarts_the_run_from_its_checkpoint(on_ray):
    settings, make, cluster = on_ray
    job_id = make(1, LEARN_ADAPTER, epochs=20, every=2, resources={"nodes": 2})
    thread, out = _in_thread(settings, job_id)
    _until(lambda: any(e.message.startswith("Checkpoint saved") for e in _events(settings, job_id)))
    cluster.lose_second_node()
    thread.join(240)
    try:
        assert out == [[job_id]], [e.message for e in _events(settings, job_id)]
        job = _job(settings, job_id)
        assert job.status == "queued" and job.attempts == 1
        [failed] = _ray_jobs(settings, job_id)
        assert failed.status == "FAILED"
        assert any("ended FAILED" in e.message for e in _events(settings, job_id))
    finally:
        cluster.add_second_node()  # the host comes back (KubeRay would replace the pod)
    job = _run(settings, job_id)
    assert job.status == "succeeded", job.error
    resumed = [e for e in _events(settings, job_id) if "Resuming" in e.message]
    assert resumed and resumed[0].data["step"] >= 2
    step = resumed[0].data["step"]  # rank 1 downloaded that checkpoint on its own node
    assert f"/checkpoint-{step} into " in _ray_logs(settings, job_id)
    assert len(_ray_jobs(settings, job_id)) == 2
    assert max(s for s, _ in _curve(settings, job_id)) == 20


def _supervised(settings: Settings, job_id: str, stopping: list) -> tuple[threading.Thread, list]:
    """The worker's supervisor in a thread; it shuts down once `stopping` holds something."""
    out: list = []
    thread = threading.Thread(
        target=lambda: out.append(supervise(settings, job_id, "lathe@test", lambda: bool(stopping)))
    )
    thread.start()
    return thread, out


def test_a_worker_shutdown_hands_the_run_back_with_a_checkpoint(on_ray):
    settings, make, _ = on_ray
    job_id = make(1, LEARN_ADAPTER, epochs=500, resources={"nodes": 2})
    stopping: list = []
    thread, out = _supervised(settings, job_id, stopping)
    _until(lambda: _trained(settings, job_id, 2))
    stopping.append(True)  # SIGTERM on the worker
    thread.join(240)
    assert out == [[job_id]]  # handed back to the queue, with a checkpoint to resume from
    assert _job(settings, job_id).status == "queued"
    assert any(e.message.startswith("Checkpoint saved") for e in _events(settings, job_id))
    [stopped] = _ray_jobs(settings, job_id)
    assert stopped.status == "STOPPED"


def test_a_dead_workers_job_is_taken_back_leaving_no_ray_job(on_ray, monkeypatch):
    settings, make, _ = on_ray
    monkeypatch.setenv("LATHE_LEASE_TIMEOUT_S", "6")  # the driver reads it too (forwarded)
    job_id = make(1, LEARN_ADAPTER, epochs=500, resources={"nodes": 2})
    code = (
        "import sys; from core.runs.supervisor import supervise; "
        "from core.settings import get_settings; "
        "supervise(get_settings(), sys.argv[1], 'lathe@gone', lambda: False)"
    )
    worker = subprocess.Popen([sys.executable, "-c", code, job_id], start_new_session=True)
    try:
        _until(lambda: _job(settings, job_id).status == "running")  # claimed by rank 0
    finally:  # its host is gone: the worker and its Ray submitter die at once, saying nothing
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    [ray_job] = _until(lambda: [j for j in _ray_jobs(settings, job_id) if j.status.is_terminal()])
    assert ray_job.status == "FAILED"  # its driver ended it once the lease lapsed
    taken = db_retry(settings, "admit", lambda s: admit(s, job_id, settings.jobs.max_attempts))
    assert taken is not None and taken.status == "queued"
