"""Numeric bounds and grader budgets against the real server and worker: out-of-range knobs
are 400s naming the field, a grader nested 400 deep is a 400 (not a RecursionError), a
catastrophic JSON-schema pattern costs a job a regex timeout per row instead of the worker,
and max_seq_length beyond the base model's context fails the job naming the field."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.utils.flows import capitals_jsonl, wait_job
from tests.utils.rss import PeakRss

RSS_BUDGET_MB = 64
"""Growth of the API process allowed while it refuses a bad job spec."""

CATASTROPHIC = {
    "type": "json_schema",
    "name": "evil",
    "input": '"{{item.reference_answer}}"',
    # ^(a+)+$ hung the worker on Python's re; ^(a|a)*$ is exponential on `regex` too
    "schema": {"type": "string", "anyOf": [{"pattern": "^(a+)+$"}, {"pattern": "^(a|a)*$"}]},
}


@pytest.fixture(scope="module")
def chat_file(stack, tmp_path_factory) -> str:
    path = capitals_jsonl(tmp_path_factory.mktemp("bounds") / "train.jsonl")
    return stack.client().files.create(file=path.open("rb"), purpose="fine-tune").id


@pytest.fixture(scope="module")
def evil_prompts(stack, tmp_path_factory) -> str:
    rows = [
        {"messages": [{"role": "user", "content": f"Say a{i}"}], "reference_answer": "a" * 40 + "!"}
        for i in range(4)
    ]
    path = tmp_path_factory.mktemp("bounds") / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return stack.client().files.create(file=path.open("rb"), purpose="fine-tune").id


def refused(stack, **body) -> dict:
    with PeakRss(stack.api.popen.pid) as rss, pytest.raises(openai.BadRequestError) as exc:
        stack.client().fine_tuning.jobs.create(
            model=body.pop("model", "tiny-llama"),
            training_file=body.pop("training_file"),
            **({"seed": body.pop("seed")} if "seed" in body else {}),
            extra_body=body,
        )
    assert rss.growth_mb < RSS_BUDGET_MB
    return exc.value.response.json()["error"]


def grpo(hp: dict | None = None, grader: dict | None = None) -> dict:
    block = {"grader": grader or CATASTROPHIC, "hyperparameters": hp or {}}
    return {"type": "grpo", "grpo": block}


def test_seed_above_int64_is_a_400(stack, chat_file):
    error = refused(stack, training_file=chat_file, seed=2**63 + 1)
    assert error["param"] == "seed" and error["type"] == "invalid_request_error"


def test_max_seq_length_of_a_billion_is_a_400(stack, chat_file):
    method = {"type": "supervised", "supervised": {"hyperparameters": {"max_seq_length": 10**9}}}
    error = refused(stack, training_file=chat_file, method=method)
    assert error["param"] == "method.supervised.hyperparameters.max_seq_length"
    assert "at most 131072" in error["message"]


@pytest.mark.parametrize(
    ("field", "value", "maximum"),
    [
        ("num_generations", 10**6, 64),
        ("max_new_tokens", 10**6, 4096),
        ("total_steps", 10**9, 10**6),
    ],
)
def test_grpo_knobs_are_bounded(stack, evil_prompts, field, value, maximum):
    error = refused(stack, training_file=evil_prompts, method=grpo({field: value}))
    assert error["param"] == f"method.grpo.hyperparameters.{field}"
    assert str(maximum) in error["message"]


def test_dpo_epochs_are_bounded(stack, chat_file):
    method = {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 10**6}}}
    error = refused(stack, training_file=chat_file, method=method)
    assert error["param"] == "method.dpo.hyperparameters.n_epochs"


def test_grader_nested_400_deep_is_a_400_naming_the_grader(stack, evil_prompts):
    grader: dict = {
        "type": "string_check",
        "name": "leaf",
        "input": "a",
        "reference": "a",
        "operation": "eq",
    }
    for level in range(400):
        grader = {
            "type": "multi",
            "name": f"m{level}",
            "graders": {"g": grader},
            "calculate_output": "g",
        }
    error = refused(stack, training_file=evil_prompts, method=grpo(grader=grader))
    assert error["param"] == "method.grpo.grader"
    assert "nest deeper than 8 levels" in error["message"]


def test_catastrophic_schema_pattern_costs_a_timeout_not_the_worker(stack, evil_prompts):
    hp = {"total_steps": 2, "batch_size": 2, "num_generations": 2, "max_new_tokens": 4}
    started = time.monotonic()
    job = stack.client().fine_tuning.jobs.create(
        model="tiny-llama", training_file=evil_prompts, seed=1, extra_body={"method": grpo(hp)}
    )
    done, _ = wait_job(stack.client(), job.id, timeout=300)
    seconds = time.monotonic() - started
    print(f"GRPO with a catastrophic json_schema pattern: {done.status} in {seconds:.1f}s")
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    events = stack.client().fine_tuning.jobs.list_events(job.id, limit=100).data
    rewards = [e.data["mean_reward"] for e in events if e.type == "metrics"]
    assert rewards == [0.0, 0.0]  # every sample timed out: scored 0, the run went on


def test_max_seq_length_beyond_the_model_context_fails_the_job_naming_it(stack, chat_file):
    method = {"type": "supervised", "supervised": {"hyperparameters": {"max_seq_length": 4096}}}
    job = stack.client().fine_tuning.jobs.create(
        model="tiny-llama", training_file=chat_file, extra_body={"method": method}
    )
    done, _ = wait_job(stack.client(), job.id, timeout=180)
    assert done.status == "failed"
    assert done.error.param == "method.supervised.hyperparameters.max_seq_length"
    assert "context of 512 tokens" in done.error.message


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(17)},  # 10,000 keys were accepted
        {"k" * 65: "v"},
        {"k": "v" * 513},
    ],
    ids=["pairs", "key", "value"],
)
def test_metadata_is_bounded_as_openai_bounds_it(stack, chat_file, metadata):
    assert refused(stack, training_file=chat_file, metadata=metadata)["param"] == "metadata"


def test_unknown_target_modules_are_a_400_naming_the_modules_that_exist(stack, chat_file):
    error = refused(stack, training_file=chat_file, adapter={"target_modules": ["q_proj", "nope"]})
    assert error["param"] == "adapter.target_modules", error
    assert "'nope'" in error["message"] and "'down_proj'" in error["message"]
    assert "q_proj" in error["message"]  # listed among those that exist


def test_the_dry_run_checks_target_modules_too(stack, chat_file):
    import httpx

    checked = httpx.post(
        f"{stack.url}/files/{chat_file}/validate",
        headers={"Authorization": f"Bearer {stack.key}"},
        json={"model": "tiny-llama", "adapter": {"target_modules": ["nope"]}},
        timeout=120,
    )
    assert checked.status_code == 400, checked.text
    assert checked.json()["error"]["param"] == "adapter.target_modules"
