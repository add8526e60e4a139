"""`resources.nodes` at creation (no Ray started): a job across hosts is accepted only where a Ray
cluster is configured and for methods that train across devices, each refusal a 400 naming the
field; its message goes to the Ray queue, which only workers with a Ray address consume; the
driver's lease check. The refusal without Ray and the OpenAPI schema are checked against a real
server in tests/api/test_contract.py; the Ray side in tests/core/runs/test_ray_jobs.py."""

from __future__ import annotations

import pytest

from core.auth import get_or_create_org
from core.errors import InvalidRequest
from core.files import store_local_file
from core.jobs import hosts, placement
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import Job, utcnow
from core.registry import sync_base_models
from core.runs.ray_driver import lost_reason
from core.settings import Settings, get_settings
from core.storage import get_storage
from tests.utils.flows import capitals_jsonl
from tests.utils.rlhf import DIGIT_GRADER

TWO_NODES = {"nodes": 2}


@pytest.fixture(scope="module")
def create(tmp_path_factory, model_cache):
    tmp = tmp_path_factory.mktemp("ray-spec")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATHE_DATA_DIR", str(tmp / "data"))
        mp.setenv("LATHE_MODEL_CACHE_DIR", str(model_cache))
        mp.setenv("LATHE_RAY_ADDRESS", "http://127.0.0.1:1")  # configured; never reached here
        (tmp / "data").mkdir()
        get_settings.cache_clear()
        settings = Settings()
        upgrade(settings.resolved_database_url)
        with session_scope(settings.resolved_database_url) as s:
            org = get_or_create_org(s, "ray-spec")
            sync_base_models(s, settings)
            f = store_local_file(
                s, get_storage(settings), org.id, capitals_jsonl(tmp / "t.jsonl"),
                "fine-tune", format="chat", n_examples=4,
            )  # fmt: skip

        def make(**spec) -> Job:
            body = JobCreate.model_validate({"model": "tiny-llama", "training_file": f.id, **spec})
            with session_scope(settings.resolved_database_url) as s:
                job = create_job(s, org.id, body)
                s.expunge(job)
                return job

        yield settings, make, mp
    get_settings.cache_clear()


def test_a_job_across_hosts_goes_to_the_ray_queue_of_workers_with_ray(create):
    settings, make, _ = create
    job = make(resources={"nodes": 2, "gpus_per_node": 1}, distributed={"strategy": "ddp"})
    assert job.spec["resources"] == {"gpus": 1, "nodes": 2, "gpus_per_node": 1}
    assert placement.job_queue(settings, job.id) == hosts.ray_queue(settings)
    assert hosts.ray_queue(settings) in placement.worker_queues(settings, 1)
    no_ray = settings.model_copy(update={"ray": settings.ray.model_copy(update={"address": None})})
    assert hosts.ray_queue(settings) not in placement.worker_queues(no_ray, 1)


@pytest.mark.parametrize(
    ("spec", "param", "code"),
    [
        (
            {"resources": TWO_NODES, "method": {"type": "grpo", "grpo": {"grader": DIGIT_GRADER}}},
            "resources.nodes",
            "unsupported_on_worker",
        ),
        ({"resources": {"nodes": 2, "gpus": 2}}, "resources.gpus", "invalid_request"),
        ({"resources": {"gpus_per_node": 2}}, "resources.gpus_per_node", "invalid_request"),
        (
            {"resources": TWO_NODES, "distributed": {"strategy": "fsdp"}},  # a LoRA adapter
            "distributed.strategy",
            "invalid_request",
        ),
    ],
)
def test_what_cannot_run_across_hosts_is_refused_naming_the_field(create, spec, param, code):
    _, make, _ = create
    with pytest.raises(InvalidRequest) as exc:
        make(**spec)
    assert exc.value.param == param and exc.value.code == code


def _job(status: str, attempts: int, lease_s: float | None) -> Job:
    from datetime import timedelta

    lease = None if lease_s is None else utcnow() + timedelta(seconds=lease_s)
    return Job(status=status, attempts=attempts, lease_expires_at=lease)


@pytest.mark.parametrize(
    ("status", "attempts", "lease_s", "lost"),
    [
        ("queued", 0, None, None),  # rank 0 has not claimed it yet
        ("running", 1, 30, None),  # claimed, lease renewed
        ("running", 1, -1, "lease"),  # its worker died
        ("running", 2, 30, "another run"),  # taken back and claimed again
        ("queued", 1, None, "another run"),  # taken back
        ("cancelled", 1, 30, None),  # rank 0 stops on it by itself
        ("cancelled", 1, -100, "did not stop"),
    ],
)
def test_the_ray_job_ends_when_its_run_lost_the_job(status, attempts, lease_s, lost):
    reason = lost_reason(_job(status, attempts, lease_s), 0, utcnow(), grace_s=60)
    assert reason is None if lost is None else lost in reason
