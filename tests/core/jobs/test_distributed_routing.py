"""Where a multi-device job goes and what is refused at creation: a job's message lands in the
queue of workers of its size on the real Redis (a 1-GPU worker does not consume it); a size no
worker class has is said in an event; what cannot run across devices is a 400 naming the field.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.auth import get_or_create_org
from core.errors import InvalidRequest
from core.files import store_local_file
from core.jobs import placement
from core.jobs.service import create_job
from core.jobspec.job import JobCreate
from core.persistence.db import session_scope
from core.persistence.migrate import upgrade
from core.persistence.models import JobEvent
from core.registry import sync_base_models
from core.settings import Settings, get_settings
from core.storage import get_storage
from tests.utils.flows import capitals_jsonl
from tests.utils.rlhf import DIGIT_GRADER

GRPO = {"grader": DIGIT_GRADER}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, model_cache, redis_queue):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _jobs(tmp_path_factory.mktemp("routing"), model_cache, monkeypatch, redis_queue)


def _jobs(tmp_path, model_cache, monkeypatch, redis_queue):
    from tests.conftest import REDIS_URL

    for key, value in {
        "LATHE_DATA_DIR": str(tmp_path / "data"),
        "LATHE_MODEL_CACHE_DIR": str(model_cache),
        "LATHE_BROKER_URL": REDIS_URL,
        "LATHE_QUEUE_NAME": f"{redis_queue}-routing",  # not the api stack worker's queue
        "LATHE_WORKER_GPU_SIZES": "[1, 2]",
    }.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "data").mkdir()
    get_settings.cache_clear()
    settings = Settings()
    upgrade(settings.resolved_database_url)
    with session_scope(settings.resolved_database_url) as s:
        org = get_or_create_org(s, "routing")
        sync_base_models(s, settings)
        f = store_local_file(
            s, get_storage(settings), org.id, capitals_jsonl(tmp_path / "t.jsonl"),
            "fine-tune", format="chat", n_examples=4,
        )  # fmt: skip

    def create(**spec) -> str:
        body = JobCreate.model_validate({"model": "tiny-llama", "training_file": f.id, **spec})
        with session_scope(settings.resolved_database_url) as s:
            return create_job(s, org.id, body).id

    yield settings, create
    get_settings.cache_clear()


def _events(settings: Settings, job_id: str) -> list[JobEvent]:
    with session_scope(settings.resolved_database_url) as s:
        rows = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id)))
        s.expunge_all()
    return rows


def test_a_two_gpu_job_waits_in_the_two_gpu_queue_not_the_one_gpu_workers(jobs):
    import redis

    from tests.conftest import REDIS_URL
    from worker.celery_app import enqueue_job

    settings, create = jobs
    two, one = create(resources={"gpus": 2}), create()
    one_gpu_worker = placement.worker_queues(settings, 1)
    two_gpu_worker = placement.worker_queues(settings, 2)
    big = placement.queue_for(settings, 2)
    assert big not in one_gpu_worker and big in two_gpu_worker
    assert one_gpu_worker == [settings.broker.queue_name]  # the embedded default: one queue
    client = redis.Redis.from_url(REDIS_URL)
    before = {q: client.llen(q) for q in (big, settings.broker.queue_name)}
    enqueue_job(two)
    enqueue_job(one)
    assert client.llen(big) == before[big] + 1  # the message waits for a 2-GPU worker
    assert client.llen(settings.broker.queue_name) == before[settings.broker.queue_name] + 1
    assert not [e for e in _events(settings, two) if e.level == "warn"]  # a class has 2
    shown = _shown(settings, two)  # waiting for its size: queued, saying for what
    assert shown.status == "queued" and shown.waiting_for == [
        "a worker with 2 GPUs (lathe worker --gpus 2)"
    ]
    assert shown.resources == {"gpus": 2, "nodes": 1} and shown.distributed == {"strategy": "auto"}
    shown = _shown(settings, one)  # its files checked at creation: queued, waiting for nothing
    assert shown.status == "queued" and not shown.waiting_for
    said = [e.message for e in _events(settings, one)]
    assert "Validated training files, job queued" in said


def _shown(settings: Settings, job_id: str):
    """The job as GET /v1/fine_tuning/jobs/{id} answers it."""
    from api.schemas import FineTuningJob
    from core.persistence.models import Job

    with session_scope(settings.resolved_database_url) as s:
        return FineTuningJob.from_row(s.get(Job, job_id), s)


def test_a_size_no_worker_class_has_says_so(jobs):
    settings, create = jobs
    job_id = create(resources={"gpus": 4})
    [note] = [e for e in _events(settings, job_id) if e.level == "warn"]
    assert "No worker class" in note.message and "gpus-4" in note.message
    assert note.data == {"gpus": 4}


@pytest.mark.parametrize(
    ("spec", "param", "code"),
    [
        (
            {"resources": {"gpus": 2}, "method": {"type": "grpo", "grpo": GRPO}},
            "resources.gpus",
            "unsupported_on_worker",
        ),
        (
            {"resources": {"gpus": 2}, "distributed": {"strategy": "zero3"}},
            "distributed.strategy",
            "unsupported_on_worker",
        ),
        (
            {"resources": {"gpus": 2}, "distributed": {"strategy": "fsdp"}},  # a LoRA adapter
            "distributed.strategy",
            "invalid_request",
        ),
        ({"distributed": {"strategy": "ddp"}}, "distributed.strategy", "invalid_request"),
    ],
)
def test_what_cannot_run_across_devices_is_refused_naming_the_field(jobs, spec, param, code):
    _, create = jobs
    with pytest.raises(InvalidRequest) as exc:
        create(**spec)
    assert exc.value.param == param and exc.value.code == code
