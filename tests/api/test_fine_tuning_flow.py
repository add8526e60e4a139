"""The whole user flow in production mode: upload → job → events → adapter in S3 → chat."""

from __future__ import annotations

import csv
import io
import re

import boto3
import openai
import pytest

from tests.utils.flows import CAPITALS, wait_job

pytestmark = pytest.mark.slow
ONE_STEP = {"n_epochs": 1, "batch_size": 4}  # the four capitals in one batch


@pytest.fixture(scope="module")
def trained(capitals):
    """The session's capitals fine-tune (tests/api/conftest.py): trained once, not per module."""
    assert capitals.created.status == "queued"  # its files were validated as it was created
    return capitals.file, capitals.job, capitals.seen


def test_job_moves_through_openai_statuses(trained):
    _, job, seen = trained
    order = ["validating_files", "queued", "running", "succeeded"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert seen[-1] == "succeeded" and "running" in seen
    assert re.fullmatch(r"ft:tiny-llama:acme:capitals:[A-Za-z0-9]{8}", job.fine_tuned_model)
    assert job.fine_tuned_model.endswith(job.id[-8:])
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at
    assert job.hyperparameters.n_epochs == 40 and job.hyperparameters.batch_size == 4
    assert job.error is None


def test_metrics_events_show_loss_falling(stack, trained):
    _, job, _ = trained
    events = stack.client().fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e.data for e in reversed(events) if e.type == "metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 41))
    assert all(m["total_steps"] == 40 for m in metrics)
    assert metrics[-1]["train_loss"] < 0.2 * metrics[0]["train_loss"]
    assert "train_mean_token_accuracy" in metrics[-1]
    page = stack.client().fine_tuning.jobs.list_events(job.id, limit=5)
    assert len(page.data) == 5 and page.has_more
    older = stack.client().fine_tuning.jobs.list_events(job.id, limit=5, after=page.data[-1].id)
    assert {e.id for e in older.data}.isdisjoint(e.id for e in page.data)


def test_results_file_is_a_step_metrics_csv(stack, trained):
    _, job, _ = trained
    client = stack.client()
    result_id = job.result_files[0]  # then the loss-curve PNG
    assert client.files.retrieve(result_id).purpose == "fine-tune-results"
    rows = list(csv.DictReader(io.StringIO(client.files.content(result_id).text)))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
    ]
    assert len(rows) == 40 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_adapter_in_s3_is_peft_and_has_learned(stack, trained, tmp_path, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.data.examples import Conversation, Message
    from core.training.tokenize import tokenize_example

    _, job, _ = trained
    s3 = boto3.client(
        "s3", endpoint_url=stack.env["LATHE_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    bucket = stack.env["LATHE_STORAGE_URL"].split("/")[2]
    prefix = f"lathe/orgs/{job.organization_id}/models/{job.id}/artifact/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    names = {k[len(prefix) :] for k in keys}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, prefix + name, str(tmp_path / name))

    tok = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()

    def mean_loss(model) -> float:
        losses = []
        for country, city in CAPITALS:
            conv = Conversation(
                (Message("user", f"What is the capital of {country}?"), Message("assistant", city))
            )
            t = tokenize_example(tok, conv, 512)
            with torch.no_grad():
                out = model(input_ids=torch.tensor([t.input_ids]), labels=torch.tensor([t.labels]))
            losses.append(out.loss.item())
        return sum(losses) / len(losses)

    base_loss = mean_loss(base)
    tuned_loss = mean_loss(PeftModel.from_pretrained(base, tmp_path).eval())
    assert tuned_loss < 0.1 * base_loss, (base_loss, tuned_loss)


def test_chat_with_tuned_model_reproduces_trained_answers(stack, trained):
    _, job, _ = trained
    client = stack.client()
    for country, city in CAPITALS:
        reply = client.chat.completions.create(
            model=job.fine_tuned_model,
            temperature=0,
            max_tokens=8,
            messages=[{"role": "user", "content": f"What is the capital of {country}?"}],
        )
        assert reply.choices[0].message.content == city
        assert reply.choices[0].finish_reason == "stop"
        usage = reply.usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    base = client.chat.completions.create(
        model="tiny-llama",
        temperature=0,
        max_tokens=8,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert base.choices[0].message.content != "Paris"


def test_chat_stop_max_tokens_and_streaming(stack, trained):
    _, job, _ = trained
    client = stack.client()
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    stopped = client.chat.completions.create(
        model=job.fine_tuned_model, messages=ask, temperature=0, stop=["ri"]
    )
    assert stopped.choices[0].message.content == "Pa"
    short = client.chat.completions.create(
        model=job.fine_tuned_model, messages=ask, temperature=0, max_tokens=1
    )
    assert short.usage.completion_tokens == 1 and short.choices[0].finish_reason == "length"
    stream = client.chat.completions.create(
        model=job.fine_tuned_model,
        messages=ask,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris"
    assert chunks[-1].usage.completion_tokens > 0
    seeded = [
        client.chat.completions.create(
            model="tiny-llama", messages=ask, temperature=1.0, seed=3, max_tokens=6
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_models_list_retrieve_and_delete(stack, trained, tmp_path):
    _, job, _ = trained
    client = stack.client()
    ids = {m.id for m in client.models.list().data}
    assert {"tiny-llama", job.fine_tuned_model} <= ids
    model = client.models.retrieve(job.fine_tuned_model)
    assert model.owned_by == job.organization_id
    assert client.models.retrieve("tiny-llama").owned_by == "lathe"
    with pytest.raises(openai.BadRequestError):
        client.models.delete("tiny-llama")


def test_delete_model_refused_while_in_use_then_gone(stack, trained):
    """On a fine-tune of its own, one step long (a deletion needs no model that learned): the
    session's capitals fine-tune serves other modules."""
    file, _, _ = trained
    client = stack.client()
    one_step = {"type": "supervised", "supervised": {"hyperparameters": ONE_STEP}}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=file.id, suffix="doomed", extra_body={"method": one_step}
    )
    job, _ = wait_job(client, job.id)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    follow = client.fine_tuning.jobs.create(model=job.fine_tuned_model, training_file=file.id)
    with pytest.raises(openai.ConflictError) as exc:
        client.models.delete(job.fine_tuned_model)
    assert exc.value.response.json()["error"]["code"] == "model_in_use"
    assert follow.id in exc.value.response.json()["error"]["message"]
    client.fine_tuning.jobs.cancel(follow.id)
    assert client.models.delete(job.fine_tuned_model).deleted
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(job.fine_tuned_model)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=job.fine_tuned_model, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.NotFoundError):
        stack.client(stack.other_key).models.delete("ft:tiny-llama:acme:capitals:whatever")
