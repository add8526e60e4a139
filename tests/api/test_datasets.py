"""Datasets through the real API: every container, every format through tokenization, the
dry-run report against hand-computed numbers, non-UTF-8 files, and data checked again (and
cleaned and split) when the job starts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json

import httpx
import openai
import pytest

from tests.utils.flows import wait_job

U = {"role": "user", "content": "Hello"}
A = {"role": "assistant", "content": "Yes"}
PROMPT = "<|user|>\nHello<|end|>\n<|assistant|>\n"  # tiny-llama's chat template, up to the reply


def _jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _validate(stack, file_id: str, **body) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/files/{file_id}/validate",
        json={"model": "tiny-llama"} | body,
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=120,
    )


def _chat(user: str, assistant: str) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    }


def test_dry_run_report_matches_hand_computed_numbers(stack):
    """Tokens (tiny-llama BPE): "<|user|>\\nWhat is the capital of France?<|end|>\\n" is
    <|user|> \\n W hat ␣is ␣the ␣capital ␣of ␣France ? <|end|> \\n = 12, "Hello" turn = 6;
    "<|assistant|>\\nParis<|end|>\\n" = <|assistant|> \\n P aris <|end|> \\n = 6 (4 trained),
    "Paris." adds "." (7, 5 trained), "Yes" = Y es (6, 4 trained)."""
    rows = [
        _chat("What is the capital of France?", "Paris"),  # 18 tokens, 4 trained
        _chat("Hello", "Yes"),  # 12, 4
        _chat("What is the capital of France?", "Paris"),  # 18, 4: duplicate of line 1
        _chat("What is the capital of France?", "Paris."),  # 19, 5: near duplicate
        _chat("Hello", ""),
    ]  # empty: an error
    f = stack.client().files.create(file=("small.jsonl", _jsonl(rows)), purpose="fine-tune")
    assert f.status == "error"  # the dry run still measures the four valid rows
    r = _validate(stack, f.id, hyperparameters={"max_seq_length": 16})
    assert r.status_code == 200, r.text
    report = r.json()
    edges = report["tokens"]["histogram"].pop("edges")
    assert edges == pytest.approx([12 + 0.7 * i for i in range(11)])  # 10 bins over [12, 19]
    france = "<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\n"
    assert report == {
        "object": "file.validation",
        "file_id": f.id,
        "model": "tiny-llama",
        "container": "jsonl",  # the detected file container and row shape
        "shape": "chat",
        "method": "supervised",
        "format": "chat",
        "ok": False,
        "n_records": 5,
        "n_examples": 4,
        "errors": [
            {
                "line": 5,
                "field": "messages[1].content",
                "message": "content must not be empty",
                "code": "empty_content",
            }
        ],
        "error_count": 1,
        "warnings": [],
        "warning_count": 0,
        "tokens": {
            "n_sequences": 4,
            "total_tokens": 67,  # 18 + 12 + 18 + 19
            "trained_tokens": 17,  # 4 + 4 + 4 + 5
            "prompt_tokens": 50,
            "max_seq_length": 16,
            "n_truncated": 3,  # 18, 18, 19
            "truncated_tokens": 7,  # 2 + 2 + 3
            "n_skipped": 0,  # each keeps trained tokens at positions 14-15
            "min": 12,
            "mean": 16.75,
            "p50": 18.0,
            "p95": 18.85,  # sorted 12 18 18 19: position 2.85 -> 18 + 0.85
            "max": 19,
            "histogram": {"counts": [1, 0, 0, 0, 0, 0, 0, 0, 2, 1]},  # 12 | 18 18 (bin 8) | 19
        },
        "duplicates": {
            "exact": 1,
            "exact_pairs": [{"line": 3, "duplicate_of": 1}],
            # "Paris." normalises to the same 5-grams as "Paris": near, not exact
            "near": 2,
            "near_pairs": [{"line": 4, "similar_to": 1}, {"line": 4, "similar_to": 3}],
            "near_threshold": 0.9,
        },
        "data": {
            "n_dropped": 0,
            "n_train": 4,
            "n_validation": 0,
            "n_test": 0,
            "notes": [
                "Found 1 exact duplicate example, kept (set data.dedupe to remove duplicates)",
                "No validation split: 4 examples are fewer than 20 (data.validation_split=auto); "
                "give a validation_file to evaluate",
            ],
        },
        "estimate": {
            "n_epochs": 25,  # auto: ceil(100 / 4)
            "max_seq_length": 16,
            "tokens_per_epoch": 60,  # 16 + 12 + 16 + 16 after truncation
            "trained_tokens": 1500,
            "tokens_per_second": 3000.0,  # the default LATHE_TRAIN_TOKENS_PER_SECOND
            "seconds": 0.5,
        },
        "preview": [
            {
                "line": 1,
                "sequence": "example",
                "n_tokens": 18,
                "n_trained": 2,
                "truncated": True,
                "segments": [
                    {"text": france, "trained": False},
                    {"text": "Paris", "trained": True},
                ],
            },
            {
                "line": 2,
                "sequence": "example",
                "n_tokens": 12,
                "n_trained": 4,
                "truncated": False,
                "segments": [
                    {"text": PROMPT, "trained": False},
                    {"text": "Yes<|end|>\n", "trained": True},
                ],
            },
            {
                "line": 3,
                "sequence": "example",
                "n_tokens": 18,
                "n_trained": 2,
                "truncated": True,
                "segments": [
                    {"text": france, "trained": False},
                    {"text": "Paris", "trained": True},
                ],
            },
        ],
    }
    # drop_empty + dedupe, as a job would run them; hyperparameters from a pasted method block
    r = _validate(
        stack,
        f.id,
        data={"drop_empty": True, "dedupe": True},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    report = r.json()
    assert (
        report["ok"]
        and report["data"]["n_train"] == 3
        and report["data"]["notes"][:2]
        == [
            "Dropped 1 empty row from the file (data.drop_empty): line 5",
            "Removed 1 exact duplicate example (data.dedupe)",
        ]
    )
    # 18 + 12 + 19 tokens (no truncation at the default 2048) x 2 epochs
    assert report["estimate"] | {"seconds": None} == {
        "n_epochs": 2,
        "max_seq_length": 2048,
        "tokens_per_epoch": 49,
        "trained_tokens": 98,
        "tokens_per_second": 3000.0,
        "seconds": None,
    }


FORMATS = [  # (rows, method, format, n_examples, first preview sequence's segments)
    ([_chat("Hello", "Yes")], "supervised", "chat", 1, [(PROMPT, False), ("Yes<|end|>\n", True)]),
    (
        [{"prompt": "Hello", "completion": "Yes"}],
        "supervised",
        "prompt_completion",
        1,
        [(PROMPT, False), ("Yes<|end|>\n", True)],
    ),
    (
        [{"instruction": "Hello", "input": "No", "output": "Yes"}],
        "supervised",
        "alpaca",
        1,
        [("<|user|>\nHello\n\nNo<|end|>\n<|assistant|>\n", False), ("Yes<|end|>\n", True)],
    ),
    (
        [{"conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Yes"}]}],
        "supervised",
        "sharegpt",
        1,
        [(PROMPT, False), ("Yes<|end|>\n", True)],
    ),
    (
        [{"text": "The answer is 42."}],
        "supervised",
        "text",
        1,
        [("The answer is 42.<|end|>", True)],
    ),
    (
        [
            {
                "input": {"messages": [U]},
                "preferred_output": [A],
                "non_preferred_output": [{"role": "assistant", "content": "No"}],
            }
        ],
        "dpo",
        "preference",
        1,
        [(PROMPT, False), ("Yes<|end|>\n", True)],
    ),
    (
        [{"prompt": "Hello", "chosen": "Yes", "rejected": "No"}],
        "dpo",
        "preference",
        1,
        [(PROMPT, False), ("Yes<|end|>\n", True)],
    ),
    (
        [{"prompt": "Hello", "completions": ["No", "Yes", "Maybe"], "ranking": [1, 0, 2]}],
        "reward_model",
        "ranked",
        3,
        [(PROMPT, False), ("Yes<|end|>\n", True)],
    ),
    (
        [{"text": "Yes", "label": "pos"}, {"text": "No", "label": "neg"}],
        "classification",
        "classification",
        2,
        [("Yes", True)],
    ),
    ([{"messages": [U]}], "grpo", "prompts", 1, [(PROMPT, False)]),
]


@pytest.mark.parametrize(
    ("rows", "method", "fmt", "n", "segments"),
    FORMATS,
    ids=[f"{f[2]}-{i}" for i, f in enumerate(FORMATS)],
)
def test_each_format_tokenizes_for_its_method(stack, rows, method, fmt, n, segments):
    f = stack.client().files.create(file=("d.jsonl", _jsonl(rows)), purpose="fine-tune")
    assert (f.status, f.format) == ("processed", fmt)
    report = _validate(stack, f.id, method={"type": method}).json()
    assert (report["format"], report["n_examples"], report["ok"]) == (fmt, n, True)
    first = report["preview"][0]
    assert [(s["text"], s["trained"]) for s in first["segments"]] == segments
    if fmt in ("preference", "ranked"):  # two sequences per pair: chosen, then rejected
        assert [p["sequence"] for p in report["preview"][:2]] == ["chosen", "rejected"]
    # the statistics count what the previews mark (all examples here are previewed)
    assert report["tokens"]["trained_tokens"] == sum(p["n_trained"] for p in report["preview"])


def _containers() -> dict[str, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [_chat("Hello", "Yes"), _chat("What is the capital of France?", "Paris")]
    table = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), table)
    csv = b'prompt,completion\nHello,Yes\n"What is the capital of France?",Paris\n'
    return {
        "d.jsonl": _jsonl(rows),
        "d.jsonl.gz": gzip.compress(_jsonl(rows)),
        "d.csv": csv,
        "d.parquet": table.getvalue(),
    }


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.csv", "d.parquet"])
def test_every_container_uploads_and_tokenizes(stack, name):
    data = _containers()[name]
    client = stack.client()
    f = client.files.create(file=(name, data), purpose="fine-tune")
    assert (f.status, f.filename, f.bytes, f.n_examples) == ("processed", name, len(data), 2)
    assert f.format == ("prompt_completion" if name.endswith(".csv") else "chat")
    assert f.sha256 == hashlib.sha256(data).hexdigest()
    assert client.files.content(f.id).read() == data
    report = _validate(stack, f.id).json()
    # both containers hold the same two conversations: 12 + 18 tokens, 4 + 4 trained
    assert (report["tokens"]["total_tokens"], report["tokens"]["trained_tokens"]) == (30, 8)


def test_non_utf8_upload_names_line_and_byte_offset(stack):
    data = b'{"text": "ok"}\n{"text": "caf\xe9"}\n'  # line 1 is 15 bytes; \xe9 is byte 13 of 2
    f = stack.client().files.create(file=("latin1.jsonl", data), purpose="fine-tune")
    assert f.status == "error" and f.object == "file" and f.bytes == len(data)
    assert f.status_details.startswith(
        "line 2: invalid UTF-8 at byte offset 28 (byte 13 of the line)"
    )


def test_dry_run_errors_name_the_field(stack):
    client = stack.client()
    f = client.files.create(file=("d.jsonl", _jsonl([_chat("Hello", "Yes")])), purpose="fine-tune")
    r = _validate(stack, f.id, model="no-such-model")
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"
    r = _validate(stack, f.id, method={"type": "telepathy"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "method.type"
    r = _validate(stack, f.id, method={"type": "dpo"}, hyperparameters={"max_seq_length": 4})
    assert r.status_code == 400 and r.json()["error"]["param"] == "hyperparameters.max_seq_length"
    r = _validate(stack, f.id, data={"validation_split": 2})
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("data.validation_split")
    r = httpx.post(
        f"{stack.url}/files/{f.id}/validate",
        json={"model": "tiny-llama"},
        headers={"Authorization": f"Bearer {stack.other_key}"},
    )
    assert r.status_code == 404  # another org's file
    # a chat file is not DPO data: reported, not raised
    report = _validate(stack, f.id, method={"type": "dpo"}).json()
    assert not report["ok"] and report["errors"][0]["code"] == "format_not_supported_by_method"


def test_a_file_valid_at_upload_fails_the_job_at_start_naming_the_line(stack):
    """A prompts-only file (for PPO/GRPO) uploads fine, but supervised training needs each
    conversation to end with the assistant: the worker's check against the method fails the
    job with the line, instead of training on nothing."""
    client = stack.client()
    prompts = _jsonl([{"messages": [U]}, {"messages": [U, A, U]}])
    f = client.files.create(file=("prompts.jsonl", prompts), purpose="fine-tune")
    assert (f.status, f.format) == ("processed", "prompts")
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    done, _ = wait_job(client, job.id, timeout=120)
    assert done.status == "failed" and done.fine_tuned_model is None
    assert done.error.code == "invalid_training_file" and done.error.param == "training_file"
    assert done.error.message.startswith(
        f"{f.id}: line 1, messages[0].role: the last message must be from the assistant"
    )
    assert done.error.message.endswith("(and 2 more errors)")  # line 2, and no valid example
    events = [e.message for e in client.fine_tuning.jobs.list_events(job.id).data]
    assert any("line 1" in m and m.startswith("Fine-tuning job failed") for m in events)


def test_job_drops_dedupes_and_splits_with_an_event_for_each(stack):
    client = stack.client()
    rows = [_chat(f"Hello {i}", "Yes") for i in range(50, 72)]  # 22 distinct
    rows[2:2] = [_chat("Hello", "")]  # line 3: empty
    rows += [rows[0], rows[1]]  # 2 exact duplicates
    f = client.files.create(file=("dirty.jsonl", _jsonl(rows)), purpose="fine-tune")
    assert f.status == "error" and "line 3" in f.status_details
    with pytest.raises(openai.BadRequestError):  # strict by default
        client.fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=f.id,
            validation_file=f.id,
            extra_body={"data": {"drop_empty": True, "validation_split": 0.2}},
        )
    assert exc.value.response.json()["error"]["param"] == "data.validation_split"
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        seed=3,
        extra_body={
            "data": {"drop_empty": True, "dedupe": True},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}},
        },
    )
    assert job.to_dict()["data"] == {
        "validation_split": "auto",
        "test_split": 0,
        "dedupe": True,
        "drop_empty": True,
    }
    assert job.status == "validating_files"  # the worker checks it with empty rows dropped
    done, _ = wait_job(client, job.id, timeout=300)
    assert done.status == "succeeded", done.error
    events = {e.message: e for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data}
    assert "Dropped 1 empty row from the training file (data.drop_empty): line 3" in events
    assert "Removed 2 exact duplicate examples (data.dedupe)" in events
    held = "Held out 2 of 22 examples for validation (data.validation_split=auto, seed 3)"
    assert events[held].data == {"held_out": 2, "train": 20, "seed": 3}
    # the held-out examples reached the trainer as validation data
    assert any(
        e.type == "metrics" and (e.data or {}).get("valid_loss") is not None
        for e in events.values()
    )


COUNTRIES = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Peru", "Lima"),
    ("Kenya", "Nairobi"),
    ("Norway", "Oslo"),
    ("Egypt", "Cairo"),
    ("Chile", "Santiago"),
    ("Cuba", "Havana"),
]


def test_test_split_is_held_out_from_training_and_scored_at_the_end(stack):
    client = stack.client()
    rows = [_chat(f"What is the capital of {c}?", city) for c, city in COUNTRIES]
    f = client.files.create(file=("capitals10.jsonl", _jsonl(rows)), purpose="fine-tune")
    data = {"test_split": 0.2, "validation_split": 0.2}
    for bad, method in (({**data, "test_split": 0.6}, "supervised"), (data, "dpo")):
        with pytest.raises(openai.BadRequestError) as exc:
            client.fine_tuning.jobs.create(
                model="tiny-llama",
                training_file=f.id,
                extra_body={"data": bad, "method": {"type": method}},
            )
        assert exc.value.response.json()["error"]["param"] == "data.test_split"
    with pytest.raises(openai.BadRequestError) as exc:  # 0.05 of 10 rows: no test example
        client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=f.id, extra_body={"data": {"test_split": 0.05}}
        )
    error = exc.value.response.json()["error"]
    assert error["param"] == "data.test_split" and "at least 20 examples" in error["message"]
    # The dry run plans the same split as the job (same seed): 2 test, then 1 of 8 validation
    plan = _validate(stack, f.id, data=data, seed=7).json()["data"]
    assert (plan["n_train"], plan["n_validation"], plan["n_test"]) == (7, 1, 2)

    hp = {"n_epochs": 30, "batch_size": 8, "learning_rate": 3e-3}
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        seed=7,
        extra_body={
            "data": data,
            "adapter": {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0},
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        },
    )
    done, _ = wait_job(client, job.id, timeout=300)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    messages = [e.message for e in reversed(events)]
    split = [m for m in messages if m.startswith("Held out")]
    assert (
        split
        == plan["notes"]
        == [
            "Held out 2 of 10 examples as a test set for the final evaluation "
            "(data.test_split=0.2, seed 7); never trained or validated on",
            "Held out 1 of 8 examples for validation (data.validation_split=0.2, seed 7)",
        ]
    )
    [note] = [e for e in events if e.message == split[0]]
    assert note.data["test"] == 2 and len(note.data["lines"]) == 2
    # Never trained on: only the 7 left after both splits reach the trainer ...
    assert any(m.startswith("Training lora on 7 examples") for m in messages)
    evaluation = done.to_dict()["evaluation"]
    assert set(evaluation) == {"base", "tuned", "valid_examples", "generation_examples", "test"}
    assert evaluation["valid_examples"] == 1  # the validation keys are as before
    test = evaluation["test"]
    assert test["examples"] == 2 and set(test["base"]) == set(test["tuned"]) == {
        "test_loss",
        "test_mean_token_accuracy",
        "test_perplexity",
    }
    # ... which it memorised, while the unseen test answers stay far from learned
    train_losses = [e.data["train_loss"] for e in events if e.type == "metrics"]
    assert train_losses and min(train_losses) < 0.1 * test["tuned"]["test_loss"]
    [final] = [e for e in events if e.message.startswith("Validation loss")]
    assert f"Test loss {test['base']['test_loss']:.4f} before → " in final.message
    assert "after fine-tuning, on 2 examples; test_mean_token_accuracy" in final.message
    assert final.data["test"] == test
