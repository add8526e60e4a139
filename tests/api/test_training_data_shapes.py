"""Tool-calling data and the open ecosystem's dataset shapes through the real API: each
uploads, is named in the dry run, and trains; the tool-calling model then emits the trained
call as `message.tool_calls`. One batch of tiny jobs, submitted together."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.utils.flows import LEARN_ADAPTER, wait_job

pytestmark = pytest.mark.slow

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME = {
    "name": "get_time",
    "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TOOLS = [{"type": "function", "function": WEATHER}, {"type": "function", "function": TIME}]


def _call(cid: str, name: str, city: str) -> dict:
    args = json.dumps({"city": city})
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


TOOL_ROWS = [
    {
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [_call("c1", "get_weather", "Paris")]},
        ],
    },
    {
        "tools": TOOLS,
        "parallel_tool_calls": True,
        "messages": [
            {"role": "user", "content": "Time in Tokyo and Rome?"},
            {
                "role": "assistant",
                "tool_calls": [_call("c1", "get_time", "Tokyo"), _call("c2", "get_time", "Rome")],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "9:00"},
            {"role": "tool", "tool_call_id": "c2", "content": "2:00"},
            {"role": "assistant", "content": "9:00 in Tokyo, 2:00 in Rome."},
        ],
    },
]


def _jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


LF_ROW = {
    "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {}})},
        {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "Sunny."},
    ],
    "system": "Be brief.",
    "tools": json.dumps([WEATHER]),
}
HH = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: No."}
UF = {
    "prompt": "Yes?",
    "chosen": [{"role": "user", "content": "Yes?"}, {"role": "assistant", "content": "Yes."}],
    "rejected": [{"role": "user", "content": "Yes?"}, {"role": "assistant", "content": "No."}],
}
# name: (filename, bytes, method, expected format, shape, container)
SHAPES = {
    "alpaca": (
        "alpaca_data.json",
        json.dumps([{"instruction": "Say hi", "input": "", "output": "hi"}] * 2, indent=1).encode(),
        "supervised", "alpaca", "alpaca", "json_array",
    ),
    "llamafactory": (
        "glaive_toolcall.json", json.dumps([LF_ROW, LF_ROW]).encode(),
        "supervised", "sharegpt", "llamafactory_sharegpt", "json_array",
    ),
    "preference": ("hh.jsonl", _jsonl([HH, UF]), "dpo", "preference", "hh_rlhf", "jsonl"),
    "tokenized": (
        "tok.jsonl",
        _jsonl([{"input_ids": [20, 30, 40, 50], "labels": [-100, -100, 40, 50]}] * 2),
        "supervised", "tokenized", "pretokenized", "jsonl",
    ),
    "segments": (
        "axolotl.jsonl",
        _jsonl([{"segments": [
            {"text": "Q: hi\n", "label": False},
            {"text": "A: yo", "label": True}]}]),
        "supervised", "input_output", "axolotl_input_output", "jsonl",
    ),
}  # fmt: skip


def _validate(stack, file_id: str, method: str) -> dict:
    r = httpx.post(
        f"{stack.url}/files/{file_id}/validate",
        json={"model": "tiny-llama", "method": {"type": method}},
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _method(kind: str, hyperparameters: dict) -> dict:
    return {"type": kind, kind: {"hyperparameters": hyperparameters}}


@pytest.fixture(scope="module")
def jobs(stack):
    """Every job at once (the worker runs them while the tests wait): the tool-calling job
    long enough to learn its call, each shape one tiny epoch."""
    client = stack.client()
    out, reports = {}, {}
    f = client.files.create(file=("tools.jsonl", _jsonl(TOOL_ROWS)), purpose="fine-tune")
    assert f.status == "processed", f.status_details
    reports["tools"] = _validate(stack, f.id, "supervised")
    out["tools"] = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        seed=7,
        extra_body={
            "adapter": LEARN_ADAPTER,
            "method": _method(
                # chosen on the CPU: 60 steps at 1e-2 emit the call exactly (40 at 3e-3 do not)
                "supervised",
                {"n_epochs": 60, "learning_rate": 1e-2, "batch_size": 2},
            ),
        },
    )
    for name, (filename, data, method, *_) in SHAPES.items():
        f = client.files.create(file=(filename, data), purpose="fine-tune")
        assert f.status == "processed", (name, f.status_details)
        reports[name] = _validate(stack, f.id, method)
        out[name] = client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=f.id,
            extra_body={"method": _method(method, {"n_epochs": 1, "batch_size": 2})},
        )
    return out, reports


def test_tool_calling_dataset_trains_and_the_model_calls_the_tool(stack, jobs):
    report = jobs[1]["tools"]
    assert report["ok"] and report["shape"] == "chat", report["errors"]
    segments = report["preview"][0]["segments"]  # the first row: tools in the prompt, call trained
    assert '"name": "get_weather"' in segments[0]["text"] and not segments[0]["trained"]
    assert [s["text"] for s in segments if s["trained"]] == [
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|end|>\n'
    ]
    done, _ = wait_job(stack.client(), jobs[0]["tools"].id)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    reply = stack.client().chat.completions.create(
        model=done.fine_tuned_model,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        temperature=0,
        max_tokens=64,
    )
    message = reply.choices[0].message
    assert message.tool_calls, message.content
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert reply.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_shape_is_detected_in_the_dry_run_and_trains(stack, jobs, name):
    _, _, _, fmt, shape, container = SHAPES[name]
    report = jobs[1][name]
    assert report["ok"], report["errors"]
    assert (report["format"], report["shape"], report["container"]) == (fmt, shape, container)
    assert report["tokens"]["trained_tokens"] > 0
    done, _ = wait_job(stack.client(), jobs[0][name].id)
    assert done.status == "succeeded", (name, done.error, stack.worker.tail())
    assert done.trained_tokens > 0
    print(f"{name}: job took {done.finished_at - done.created_at}s from creation")
