"""Prometheus metrics on the API and the worker, and JSON logs tagged with the job, from a real
embedded `lathe serve` (its worker beside it) that trains one small job."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.flows import capitals_jsonl, wait_job
from tests.utils.processes import Proc, base_env, free_port, lathe, wait_http, wait_log

pytestmark = pytest.mark.slow
STEPS = 3  # 4 examples, batch 4, 3 epochs


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_cache):
    root = tmp_path_factory.mktemp("observed")
    port, worker_port = free_port(), free_port()
    env = base_env(
        LATHE_DATA_DIR=str(root / ".lathe"),
        LATHE_MODEL_CACHE_DIR=str(model_cache),
        LATHE_LOG_FORMAT="json",
        LATHE_WORKER_METRICS_PORT=str(worker_port),
    )
    proc = Proc(lathe("serve", "--port", str(port)), env, root / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        wait_log(proc, "ready")
        wait_log(proc, "API key:")  # the banner comes once the port accepts connections
        key = re.search(r"API key:\s+(tml-lathe-\S+)", proc.log.read_text()).group(1)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        f = client.files.create(
            file=capitals_jsonl(root / "t.jsonl").open("rb"), purpose="fine-tune"
        )
        job = client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=f.id,
            extra_body={"method": {"type": "supervised", "supervised": {
                "hyperparameters": {"n_epochs": STEPS, "batch_size": 4}}}},
        )  # fmt: skip
        done, _ = wait_job(client, job.id)
        assert done.status == "succeeded", (done.error, proc.tail())
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{worker_port}", done, proc, client
    finally:
        proc.stop()


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_api_metrics_by_route_template_and_jobs_from_the_database(served):
    api, _, job, _, client = served
    auth = {"Authorization": f"Bearer {client.api_key}"}  # /v1 answers nothing without a key
    assert httpx.get(f"{api}/v1/no/such/thing", headers=auth).status_code == 404
    response = httpx.get(f"{api}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    retrieve = frozenset(
        {"method": "GET", "route": "/v1/fine_tuning/jobs/{fine_tuning_job_id}", "status": "200"}
        .items()
    )  # fmt: skip
    assert samples[("lathe_http_requests_total", retrieve)] >= 1  # wait_job polled it
    assert samples[("lathe_http_request_duration_seconds_count", retrieve)] >= 1
    unmatched = frozenset({"method": "GET", "route": "unmatched", "status": "404"}.items())
    assert samples[("lathe_http_requests_total", unmatched)] == 1
    assert not any(job.id in str(labels) for _, labels in samples)  # templates, not ids
    assert samples[("lathe_jobs", frozenset({"status": "succeeded"}.items()))] == 1
    assert samples[("lathe_jobs", frozenset({"status": "running"}.items()))] == 0
    assert samples[("lathe_queue_depth", frozenset())] == 0


def test_worker_metrics_count_steps_and_tokens(served):
    _, worker, _, _, _ = served
    samples = _samples(httpx.get(f"{worker}/metrics").text)
    assert samples[("lathe_worker_steps_total", frozenset())] == STEPS
    assert samples[("lathe_worker_step_seconds_count", frozenset())] == STEPS
    assert samples[("lathe_worker_step_seconds_sum", frozenset())] > 0
    completed = frozenset({"outcome": "completed"}.items())
    assert samples[("lathe_worker_trainings_total", completed)] == 1
    assert samples[("lathe_worker_tokens_total", frozenset())] > 0
    assert samples[("lathe_worker_tokens_per_second", frozenset())] > 0


def test_logs_are_json_with_the_job_on_training_lines(served):
    _, _, job, proc, _ = served
    lines = [json.loads(line) for line in proc.log.read_text().splitlines() if line.startswith("{")]
    assert {"uvicorn.error", "lathe.training"} <= {line["logger"] for line in lines}
    steps = [line for line in lines if line["logger"] == "lathe.training"]
    assert [line["step"] for line in steps] == list(range(1, STEPS + 1))
    assert all(line["job_id"] == job.id for line in steps)
    assert all(line["org_id"].startswith("org-") for line in steps)
    assert all(isinstance(line["train_loss"], float) for line in steps)
    redirected = [line for line in lines if line["logger"] == "celery.redirected"]
    assert not [line for line in redirected if "'loss'" in line["message"]]


def test_inference_tokens_are_counted_from_usage(served):
    api, _, job, _, client = served
    route = "/v1/chat/completions"
    chat = (
        "lathe_inference_tokens_total",
        frozenset({"route": route, "kind": "completion"}.items()),
    )
    prompt = ("lathe_inference_tokens_total", frozenset({"route": route, "kind": "prompt"}.items()))
    before = _samples(httpx.get(f"{api}/metrics").text)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    reply = client.chat.completions.create(
        model=job.fine_tuned_model, messages=messages, max_tokens=3
    )
    chunks = list(
        client.chat.completions.create(
            model=job.fine_tuned_model, messages=messages, max_tokens=2, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    streamed = next(c.usage for c in chunks if c.usage is not None)
    after = _samples(httpx.get(f"{api}/metrics").text)
    grew = {k: after[k] - before.get(k, 0) for k in (chat, prompt)}
    assert grew[chat] == reply.usage.completion_tokens + streamed.completion_tokens
    assert grew[prompt] == reply.usage.prompt_tokens + streamed.prompt_tokens > 0
