"""The production deployment, for real: Postgres + Redis + S3, a uvicorn API, a Celery worker
and the inference service in separate processes, driven with the official `openai` client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob

from tests.utils.api_server import ApiServer, api_server
from tests.utils.flows import LEARN_HYPERPARAMETERS, train_capitals, wait_job
from tests.utils.stack import Stack

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


@pytest.fixture(scope="session")
def embedded_api(tmp_path_factory, model_cache) -> Iterator[ApiServer]:
    """One embedded `lathe serve --no-worker` (SQLite, local objects) for every test of the
    API's own contract; each test module takes an organization of its own (`as_org`)."""
    root = tmp_path_factory.mktemp("embedded-api")
    with api_server(root, model_cache_dir=str(model_cache), **EMBEDDED_LIMITS) as server:
        yield server


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
