"""One job across two hosts on a real local Ray cluster (a head and a second node, one CPU each,
gloo), through the real supervisor, the Ray Job Submission API and a Ray Train gang (SQLite +
local storage, which both nodes of this host share): a 2-node LoRA run trains to the losses of
a 1-process run (within 1e-3 relative); a cancel leaves no Ray job running; losing the second
node mid-run fails the Ray job, and the job is retried from its checkpoint and succeeds once
the node is back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.jobs.service import cancel_job
from core.persistence.db import session_scope
from core.runs import ray_submit
from core.settings import Settings
from core.storage import get_storage
from tests.core.runs.test_distributed import (
    _curve,
    _events,
    _in_thread,
    _job,
    _reference,
    _run,
    _same_curve,
    _until,
    make_job,  # noqa: F401  (the fixture the cases use)
)
from tests.utils.flows import LEARN_ADAPTER

pytestmark = pytest.mark.slow  # a Ray cluster and four Ray jobs

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def ray_cluster():
    """The one Ray cluster of the session (a head and a second node)."""
    pytest.importorskip("ray")
    from tests.utils.ray_cluster import local_ray

    with local_ray() as cluster:
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
    assert len(_ray_jobs(settings, job_id)) == 2
    assert max(s for s, _ in _curve(settings, job_id)) == 20
