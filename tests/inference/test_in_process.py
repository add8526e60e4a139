"""The in-process engine behind the real API: concurrent requests over several fine-tuned
adapters are decoded in shared batches (the engine's own counts say so), a request whose
model fails leaves the others alone, and the API stays responsive while generation runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import httpx
import openai
import pytest

from tests.utils.batch_stats import largest, served

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def ask(stack, model: str, max_tokens: int = 12) -> str:
    reply = stack.client().chat.completions.create(
        model=model, messages=ASK, temperature=0, max_tokens=max_tokens
    )
    return reply.choices[0].message.content


def test_concurrent_requests_over_adapters_share_batches(istack, tiny_loras):
    models = ["tiny-llama", *tiny_loras]
    alone = {m: ask(istack, m) for m in models}
    before = istack.inference_stats()["in_process"]["batch_sizes"]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda m: (m, ask(istack, m)), models * 4))
    assert all(text == alone[m] for m, text in answers)  # batching changes no answer
    after = istack.inference_stats()["in_process"]["batch_sizes"]
    assert served(before, after) == 12, (before, after)
    assert largest(before, after) >= 3, after  # requests for different adapters decoded together


def test_backend_is_named_in_a_header(istack):
    raw = istack.client().chat.completions.with_raw_response.create(
        model="tiny-llama", messages=ASK, max_tokens=2
    )
    assert raw.headers["x-lathe-backend"] == "in-process"


def test_a_request_whose_model_fails_leaves_the_others_alone(istack, tiny_loras):
    client = istack.client()
    [job] = [j for j in client.fine_tuning.jobs.list().data if j.fine_tuned_model == tiny_loras[1]]
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    broken = checkpoints[0].fine_tuned_model_checkpoint
    s3 = boto3.client(
        "s3", endpoint_url=istack.env["LATHE_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    bucket = istack.env["LATHE_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    step = broken.rsplit("-", 1)[-1]
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        if f"{job.id}/checkpoints/step-{step}/" in obj["Key"]:
            s3.delete_object(Bucket=bucket, Key=obj["Key"])

    def one(model: str):
        try:
            return ask(istack, model)
        except openai.APIStatusError as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, [broken, tiny_loras[0], "tiny-llama"] * 2))
    for model, result in zip([broken, tiny_loras[0], "tiny-llama"] * 2, results, strict=True):
        if model == broken:
            assert isinstance(result, openai.APIStatusError) and result.status_code >= 500
            assert result.response.json()["error"]["code"] == "backend_error"
        else:
            assert isinstance(result, str)


def test_health_answers_while_long_generations_run(istack):
    """The API never generates: its /health answers promptly all through a long generation."""
    client = istack.client()
    api = istack.url.removesuffix("/v1")

    def long() -> int:
        reply = client.chat.completions.create(
            model="tiny-llama",
            messages=ASK,
            temperature=1.0,
            max_tokens=400,
            logit_bias={"1": -100},  # never the end token: the whole budget runs
        )
        return reply.usage.completion_tokens

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(long) for _ in range(4)]
        latencies = []
        while not all(f.done() for f in running):
            start = time.monotonic()
            assert httpx.get(f"{api}/health", timeout=10).status_code == 200
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)  # 4 x 400 tokens take ~1 s even on a quiet CPU
        assert [f.result() for f in running] == [400] * 4
    assert len(latencies) >= 3, latencies  # answered many times during the generations
    assert max(latencies) < 5.0, latencies
