"""OpenAI's Batch API with the official client against the production stack: upload →
create → completed → output and error files in OpenAI's line format; bad lines become
error-file lines naming the line; size and endpoint limits are 400s; cancel; isolation."""

from __future__ import annotations

import io
import json
import time

import openai
import pytest

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def chat_line(custom_id: str, **body) -> dict:
    body = {"model": "tiny-llama", "messages": ASK, "max_tokens": 4, "temperature": 0, **body}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def upload(client, lines: list) -> str:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    return client.files.create(file=("in.jsonl", io.BytesIO(text.encode())), purpose="batch").id


def finished(client, batch_id: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        time.sleep(0.5)
    raise TimeoutError(f"batch {batch_id} still {batch.status}")


def read(client, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def test_chat_batch_with_bad_lines_completes_with_output_and_error_files(stack):
    client = stack.client()
    lines = [
        chat_line("a"),
        "{not json",
        chat_line("b", max_tokens=2),
        {**chat_line("c"), "url": "/v1/unknown"},
        chat_line("d", model="no-such-model"),
        chat_line("e", n=99),
        {"method": "POST", "url": "/v1/chat/completions", "body": {}},
        *[chat_line(f"r{i}") for i in range(6)],  # past one slice (8 lines)
    ]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/chat/completions",
        completion_window="24h", metadata={"run": "1"},
    )  # fmt: skip
    assert batch.status == "validating" and batch.request_counts.total == len(lines)
    done = finished(client, batch.id)
    assert done.status == "completed" and done.metadata == {"run": "1"}
    assert (done.request_counts.completed, done.request_counts.failed) == (8, 5)
    live = client.chat.completions.create(model="tiny-llama", messages=ASK, max_tokens=4,
                                          temperature=0)  # fmt: skip
    out = {x["custom_id"]: x for x in read(client, done.output_file_id)}
    assert set(out) == {"a", "b", *(f"r{i}" for i in range(6))}
    assert out["a"]["error"] is None and out["a"]["response"]["status_code"] == 200
    body = out["a"]["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == "tiny-llama"
    assert body["choices"][0]["message"]["content"] == live.choices[0].message.content
    assert out["b"]["response"]["body"]["usage"]["completion_tokens"] <= 2
    errors = read(client, done.error_file_id)
    by_line = {int(e["error"]["message"].split(":")[0].split()[1]): e for e in errors}
    assert sorted(by_line) == [2, 4, 5, 6, 7]
    assert by_line[2]["custom_id"] is None and by_line[2]["error"]["code"] == "invalid_json"
    assert by_line[4]["custom_id"] == "c" and "/v1/unknown" in by_line[4]["error"]["message"]
    assert "no-such-model" in by_line[5]["error"]["message"]
    assert "body.n" in by_line[6]["error"]["message"]
    assert by_line[7]["error"]["code"] == "missing_custom_id"
    assert done.id in [b.id for b in client.batches.list()]


def test_completions_and_embeddings_batches(stack):
    client = stack.client()
    prompt = {"model": "tiny-llama", "prompt": "The capital of", "max_tokens": 3,
              "temperature": 0}  # fmt: skip
    lines = [{"custom_id": "p", "method": "POST", "url": "/v1/completions", "body": prompt}]
    done = finished(client, client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/completions", completion_window="24h"
    ).id)  # fmt: skip
    [line] = read(client, done.output_file_id)
    assert line["response"]["body"]["choices"][0]["text"] == (
        client.completions.create(**prompt).choices[0].text
    )
    embed = {"model": "tiny-llama", "input": ["hello", "world"]}
    lines = [{"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": embed}]
    done = finished(client, client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/embeddings", completion_window="24h"
    ).id)  # fmt: skip
    [line] = read(client, done.output_file_id)
    vectors = [d["embedding"] for d in line["response"]["body"]["data"]]
    live = client.embeddings.create(**embed)
    assert vectors[1] == pytest.approx(live.data[1].embedding, abs=1e-5)


def test_batch_limits_are_400s_naming_the_field(stack):
    client = stack.client()
    with pytest.raises(openai.BadRequestError) as exc:  # LATHE_BATCH_MAX_REQUESTS=300 here
        upload(client, [chat_line(f"x{i}") for i in range(301)])
    assert exc.value.response.json()["error"]["param"] == "file"
    good = upload(client, [chat_line("a")])
    for fields, param in [
        ({"endpoint": "/v1/moderations"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"input_file_id": "file-nope"}, "input_file_id"),
    ]:
        args = {"input_file_id": good, "endpoint": "/v1/chat/completions",
                "completion_window": "24h", **fields}  # fmt: skip
        with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as exc:
            client.batches.create(**args)
        assert exc.value.response.json()["error"]["param"] == param
    tuned = client.files.create(
        file=("t.jsonl", io.BytesIO(json.dumps({"messages": ASK}).encode())), purpose="fine-tune"
    )
    with pytest.raises(openai.BadRequestError) as exc:
        client.batches.create(input_file_id=tuned.id, endpoint="/v1/chat/completions",
                              completion_window="24h")  # fmt: skip
    assert exc.value.response.json()["error"]["param"] == "input_file_id"


def test_cancel_stops_a_running_batch_and_other_orgs_see_nothing(stack):
    client = stack.client()
    lines = [chat_line(f"c{i}", max_tokens=16) for i in range(120)]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip
    second = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/chat/completions",
        completion_window="24h",
    )  # fmt: skip
    with pytest.raises(openai.RateLimitError):  # LATHE_BATCH_MAX_ACTIVE: 2 per organization
        client.batches.create(input_file_id=second.input_file_id,
                              endpoint="/v1/chat/completions", completion_window="24h")  # fmt: skip
    client.batches.cancel(second.id)
    with pytest.raises(openai.NotFoundError):
        stack.client(stack.other_key).batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        stack.client(stack.other_key).batches.cancel(batch.id)
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    counts = done.request_counts
    assert counts.completed + counts.failed < counts.total == 120
    assert len(read(client, done.output_file_id)) == counts.completed
