"""One production stack for the inference tests, with vLLM enabled for the head_dim-64 tiny
Llama (one vLLM start-up per test session), and fine-tuned models from real jobs.

`tiny-llama` is served in-process (vLLM's CPU attention refuses its head_dim 16);
`tiny-llama-64` goes to vLLM once its server is up; `tiny-llama-64-local` is the same weights
registered under another name that vLLM does not serve, so the in-process engine's
tool-capable template is tested too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.flows import LEARN_ADAPTER, LEARN_HYPERPARAMETERS, capitals_jsonl, wait_job
from tests.utils.processes import ROOT
from tests.utils.stack import Stack, running_stack

VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"


def vllm_installed() -> bool:
    """False under `scripts/test.sh --quick` (LATHE_TEST_QUICK): a local loop starts no vLLM."""
    if os.environ.get("LATHE_TEST_QUICK"):
        return False
    return VLLM_PYTHON.exists() and any((ROOT / ".venv-vllm").glob(".lathe-installed-*"))


@pytest.fixture(scope="session")
def tiny64(model_cache: Path) -> Path:
    from core.tiny_model import ensure_tiny_llama

    return ensure_tiny_llama(model_cache / "tiny-llama-64", builder="tiny-llama-64")


@pytest.fixture(scope="session")
def istack(
    tmp_path_factory, redis_queue, s3_endpoint, s3_bucket, model_cache, tiny64
) -> Iterator[Stack]:
    """A stack of its own (database, queue), beside the session's `stack`: each has its own
    base models and storage prefix, so neither's worker may take the other's jobs."""
    from tests.conftest import REDIS_URL, fresh_database

    root: Path = tmp_path_factory.mktemp("inference")
    with fresh_database() as database:
        yield from _istack(root, database, f"{redis_queue}-inference", s3_endpoint, s3_bucket,
                           model_cache, tiny64, REDIS_URL)  # fmt: skip


def _istack(
    root: Path,
    database: str,
    queue: str,
    s3_endpoint: str,
    s3_bucket: str,
    model_cache: Path,
    tiny64: Path,
    redis_url: str,
) -> Iterator[Stack]:
    services = dict(
        LATHE_DATABASE_URL=database,
        LATHE_BROKER_URL=redis_url,
        LATHE_QUEUE_NAME=queue,
        LATHE_STORAGE_URL=f"s3://{s3_bucket}/inference",
        LATHE_S3_ENDPOINT_URL=s3_endpoint,
        LATHE_MODEL_CACHE_DIR=str(model_cache),
    )
    bases = {
        "tiny-llama": {"source": "builtin"},
        "tiny-llama-64": {"source": "builtin"},
        "tiny-llama-64-local": {"source": "path", "path": str(tiny64)},
    }
    vllm = {}
    if vllm_installed():
        vllm = dict(
            LATHE_VLLM_ENABLED="true",
            LATHE_VLLM_BASE_MODELS=json.dumps(["tiny-llama-64"]),
            LATHE_VLLM_PYTHON=str(VLLM_PYTHON),
            LATHE_VLLM_MAX_MODEL_LEN="512",
        )
    with running_stack(root, services, bases, **vllm) as running:
        yield running


def train(stack: Stack, tmp: Path, base: str, suffix: str, epochs: int, seed: int) -> str:
    client = stack.client()
    f = client.files.create(
        file=capitals_jsonl(tmp / "train.jsonl").open("rb"), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model=base,
        training_file=f.id,
        suffix=suffix,
        seed=seed,
        extra_body={
            "adapter": LEARN_ADAPTER,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": {**LEARN_HYPERPARAMETERS, "n_epochs": epochs}},
            },
        },
    )
    done, _ = wait_job(client, job.id, timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    return done.fine_tuned_model


@pytest.fixture(scope="session")
def tiny_loras(istack, tmp_path_factory) -> list[str]:
    """Two LoRAs of tiny-llama (served in-process), trained briefly: they differ, that is all."""
    return [
        train(istack, tmp_path_factory.mktemp(f"t{i}"), "tiny-llama", f"quick{i}", 3, seed=i)
        for i in (1, 2)
    ]


@pytest.fixture(scope="session")
def vllm_loras(istack, tmp_path_factory) -> list[str]:
    """Two LoRAs of tiny-llama-64 that learned the capitals (seeds differ, so weights do)."""
    if not vllm_installed():
        pytest.skip(
            "vLLM is not installed here: scripts/install_vllm.sh could not create .venv-vllm"
        )
    return [
        train(istack, tmp_path_factory.mktemp(f"v{i}"), "tiny-llama-64", f"cap{i}", 40, seed=i)
        for i in (1, 2)
    ]


@pytest.fixture(scope="session")
def vllm_up(istack) -> dict:
    """Waits for the stack's vLLM server for tiny-llama-64 to be ready."""
    if not vllm_installed():
        pytest.skip(
            "vLLM is not installed here: scripts/install_vllm.sh could not create .venv-vllm"
        )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = istack.inference_stats()["vllm"].get("tiny-llama-64", {})
        if status.get("ready"):
            return status
        time.sleep(2)
    log = Path(istack.env["LATHE_DATA_DIR"]) / "logs" / "vllm-tiny-llama-64.log"
    raise TimeoutError(f"vLLM not up after 600 s:\n{log.read_text()[-3000:]}")
