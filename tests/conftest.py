"""Shared fixtures: real Postgres, Redis, an S3-compatible server, and Lathe's own processes."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.embedded import Served, embedded_serve
from tests.utils.processes import free_port
from tests.utils.stack import Stack, base_models, running_stack

PG_ADMIN = os.environ.get("LATHE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LATHE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `gpu` need CUDA: skipped (not failed) on machines without it."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu_tests:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One builtin tiny model per test session, shared by every process the tests start."""
    from core.tiny_model import ensure_tiny_llama

    cache = tmp_path_factory.mktemp("models")
    ensure_tiny_llama(cache / "tiny-llama")
    return cache


@pytest.fixture(scope="session")
def tiny_model(model_cache: Path) -> Path:
    return model_cache / "tiny-llama"


@pytest.fixture(scope="session")
def pretrained_model(model_cache: Path) -> Path:
    """The builtin `tiny-llama-pretrained` (core.tiny_pretrain), pretrained once per session
    in the shared model cache, where a stack's worker finds it too."""
    from core.tiny_pretrain import PRETRAINED, ensure_pretrained

    return ensure_pretrained(model_cache / PRETRAINED)


@pytest.fixture(scope="session")
def served(tmp_path_factory, model_cache: Path) -> Iterator[Served]:
    """One embedded `lathe serve` per session (tests.utils.embedded) for the CLI, dashboard and
    generated-SDK tests; the CLI's is the bootstrap organization, the others make their own."""
    with embedded_serve(tmp_path_factory.mktemp("served"), model_cache) as running:
        yield running


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own on the machine's Postgres, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"lathe_test_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    from core.persistence.db import get_engine

    get_engine.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database on the machine's Postgres, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_queue() -> Iterator[str]:
    """A queue name of our own on the machine's Redis; its keys are removed afterwards."""
    import redis

    queue = f"lathe-test-{secrets.token_hex(4)}"
    yield queue
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{queue}*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto in server mode: a real S3-compatible HTTP endpoint, as MinIO would be."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    bucket = f"lathe-test-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return bucket


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory, pg_url, redis_queue, s3_endpoint, s3_bucket, model_cache
) -> Iterator[Stack]:
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
