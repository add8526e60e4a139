"""Generated SDKs against a real `lathe serve` (the embedded default, its worker alongside; the
session's, tests/conftest.py):
a Python one (openapi-python-client) and a TypeScript one (@hey-api/openapi-ts, compiled with
tsc, run with node), both generated from the live server's /openapi.json, each driving
upload -> job -> events -> chat -> download and reading a 400 as the error model. One tiny job
(one optimizer step) is trained and shared; the TypeScript flow creates and cancels its own.
Generators are pinned in tests/sdk and cached with the generated code (tests/sdk/tools.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.sdk import tools
from tests.utils.embedded import Served
from tests.utils.flows import capitals_jsonl
from tests.utils.processes import base_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(served: Served) -> Served:
    """The session's embedded `lathe serve` (tests/conftest.py), as an organization of its own."""
    return replace(served, key=served.org_key("sdk"))


@pytest.fixture(scope="module")
def spec(server) -> bytes:
    return httpx.get(f"{server.url}/openapi.json", timeout=30).content


@pytest.fixture(scope="module")
def sdk(spec):
    """The generated Python package, imported from its cache folder."""
    sys.path.insert(0, str(tools.python_sdk(spec)))
    try:
        import lathe_client

        yield lathe_client
    finally:
        sys.path.pop(0)
        for name in [m for m in sys.modules if m.split(".")[0] == "lathe_client"]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def client(server, sdk):
    return sdk.AuthenticatedClient(base_url=server.url, token=server.key, timeout=httpx.Timeout(60))


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    return capitals_jsonl(tmp_path_factory.mktemp("sdk-data") / "train.jsonl")


@pytest.fixture(scope="module")
def shared_job(client, train_file, server):
    """Uploaded and trained through the Python SDK: one epoch of one batch."""
    from lathe_client.api.files import create_file
    from lathe_client.api.fine_tuning import create_fine_tuning_job, retrieve_fine_tuning_job
    from lathe_client.models import BodyCreateFile, FileObject, FineTuningJob, JobCreate
    from lathe_client.types import File

    upload = BodyCreateFile(
        file=File(payload=train_file.open("rb"), file_name="train.jsonl"), purpose="fine-tune"
    )
    uploaded = create_file.sync(client=client, body=upload)
    assert isinstance(uploaded, FileObject), uploaded
    body = JobCreate.from_dict(
        {
            "model": "tiny-llama",
            "training_file": uploaded.id,
            "suffix": "sdk",
            "metadata": {"sdk": "python"},
            "adapter": {"type": "lora", "r": 4},
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}},
            },
        }
    )
    job = create_fine_tuning_job.sync(client=client, body=body)
    assert isinstance(job, FineTuningJob), job
    deadline = time.monotonic() + 300
    while job.status not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = retrieve_fine_tuning_job.sync(job.id, client=client)
    assert job.status == "succeeded", (job.error, server.proc.tail())
    return uploaded, job


def test_python_sdk_flow(client, shared_job, train_file):
    from lathe_client.api.files import download_file
    from lathe_client.api.fine_tuning import (
        create_fine_tuning_job,
        list_fine_tuning_events,
        list_fine_tuning_jobs,
    )
    from lathe_client.api.inference import create_chat_completion
    from lathe_client.api.models import download_model
    from lathe_client.models import (
        AdapterSpec,
        ChatCompletion,
        ChatRequest,
        ErrorResponse,
        JobCreate,
        ListFineTuningJobsMetadata,
        ListResponseJobEventObject,
        MethodSupervised,
    )

    uploaded, job = shared_job
    assert isinstance(job.method, MethodSupervised)  # the variant of method.type
    assert isinstance(job.adapter, AdapterSpec) and job.adapter.r == 4
    assert job.hyperparameters.n_epochs == 1  # typed, resolved

    content = download_file.sync_detailed(uploaded.id, client=client)
    assert content.status_code == 200 and content.content == train_file.read_bytes()

    events = list_fine_tuning_events.sync(job.id, client=client, limit=100)
    assert isinstance(events, ListResponseJobEventObject)
    assert "succeeded" in {e.message for e in events.data} or any(
        e.type_ == "metrics" for e in events.data
    ), [e.message for e in events.data]

    chat = create_chat_completion.sync(
        client=client,
        body=ChatRequest.from_dict(
            {
                "model": job.fine_tuned_model,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "What is the capital of Japan?"}],
            }
        ),
    )
    assert isinstance(chat, ChatCompletion) and isinstance(chat.choices[0].message.content, str)

    zipped = download_model.sync(job.fine_tuned_model, client=client)
    assert zipped.payload.read(2) == b"PK"

    bad = JobCreate.from_dict(
        {
            "model": "tiny-llama",
            "training_file": uploaded.id,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}},
        }
    )
    refused = create_fine_tuning_job.sync(client=client, body=bad)
    assert isinstance(refused, ErrorResponse)
    assert refused.error.param == "method.supervised.hyperparameters.n_epochs"
    assert refused.error.type_ == "invalid_request_error"

    # this generator writes deepObject filters as ?sdk=python: refused by name, not ignored
    flat = list_fine_tuning_jobs.sync(
        client=client, metadata=ListFineTuningJobsMetadata.from_dict({"sdk": "python"})
    )
    assert isinstance(flat, ErrorResponse) and flat.error.param == "sdk"


def test_typescript_sdk_flow(server, spec, shared_job, train_file):
    _, job = shared_job
    flow = tools.typescript_flow(spec)
    env = dict(
        base_env(),
        LATHE_BASE_URL=server.url,
        LATHE_API_KEY=server.key,
        SHARED_JOB=job.id,
        TRAIN_FILE=str(train_file),
    )
    run = subprocess.run(["node", str(flow)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert re.fullmatch(r"file-\w+", seen["file"]["id"]) and seen["file"]["same_content"]
    assert seen["file"]["bytes"] == train_file.stat().st_size
    assert seen["error"] == {
        "status": 400,
        "param": "method.supervised.hyperparameters.lr_scheduler",
        "type": "invalid_request_error",
    }
    assert seen["created"]["adapter_r"] == 4 and seen["created"]["method_type"] == "supervised"
    assert seen["cancelled"] == "cancelled"
    assert seen["filtered"] == [seen["created"]["id"]]  # metadata[sdk]=typescript
    assert seen["job"] == {"status": "succeeded", "model": job.fine_tuned_model}
    assert seen["events"] and set(seen["events"]) <= {"message", "metrics"}
    # the SSE stream replays the same events, oldest first, and ends once the job is done
    assert sorted(t for t in seen["streamed"] if t != "[DONE]") == sorted(seen["events"])
    assert seen["chat"]["object"] == "chat.completion"
    assert isinstance(seen["chat"]["content"], str)
    assert seen["zip"]["magic"] == "PK" and seen["zip"]["bytes"] > 1000
