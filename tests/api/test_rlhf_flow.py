"""RLHF end to end in production mode: DPO, reward models (+ /v1/rewards), GRPO and PPO jobs
submitted with the openai client, observed through events, and used; then the
SFT → reward model → PPO pipeline from one request, and one whose middle stage breaks."""

from __future__ import annotations

import math
import time

import httpx
import openai
import pytest

from core.model_store import ModelStore, StoredModel
from core.settings import Settings
from core.storage import get_storage
from tests.utils.flows import wait_job
from tests.utils.rlhf import (
    DIGIT_GRADER,
    HELD_OUT,
    QUESTIONS,
    chat_rows,
    preference_margin,
    preference_rows,
    prompt_rows,
    write_jsonl,
)

pytestmark = pytest.mark.slow

LORA = {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0}
RM_HP = {"n_epochs": 4, "batch_size": 4, "learning_rate": 3e-3}
PPO_HP = {
    "total_steps": 20,
    "batch_size": 24,
    "mini_batch_size": 12,
    "ppo_epochs": 2,
    "max_new_tokens": 8,
    "temperature": 1.0,
    "learning_rate": 1e-3,
    "kl_coef": 0.05,
}
SFT_HP = {"n_epochs": 4, "batch_size": 4, "learning_rate": 3e-3, "packing": False}
# The pipeline only has to run its stages in order: short stages keep the test fast.
PIPELINE_RM_HP = {**RM_HP, "n_epochs": 2}
PIPELINE_PPO_HP = {**PPO_HP, "total_steps": 6, "batch_size": 12, "ppo_epochs": 1}
VALID = preference_rows(HELD_OUT, seed=1)


@pytest.fixture(scope="module")
def files(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rlhf")
    client = stack.client()

    def upload(name: str, rows: list[dict]) -> str:
        return client.files.create(
            file=write_jsonl(tmp / name, rows).open("rb"), purpose="fine-tune"
        ).id

    return {
        "pairs": upload("pairs.jsonl", preference_rows(QUESTIONS, per_question=2)),
        "valid_pairs": upload("valid_pairs.jsonl", VALID),
        "prompts": upload("prompts.jsonl", prompt_rows(QUESTIONS)),
        "chat": upload("chat.jsonl", chat_rows(QUESTIONS)),
    }


def _create(client, method: dict, training_file: str, **kwargs):
    return client.fine_tuning.jobs.create(
        model=kwargs.pop("model", "tiny-llama"),
        training_file=training_file,
        seed=7,
        extra_body={"adapter": LORA, "method": method},
        **kwargs,
    )


def _succeeded(stack, job_id: str):
    started = time.monotonic()
    job, seen = wait_job(stack.client(), job_id)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    print(f"{job_id} ({job.method.type}): {time.monotonic() - started:.1f}s to succeed")
    return job, seen


def _metrics(stack, job_id: str) -> list[dict]:
    events = stack.client().fine_tuning.jobs.list_events(job_id, limit=100).data
    return [e.data for e in reversed(events) if e.type == "metrics"]


def _final(stack, job_id: str) -> dict:
    events = stack.client().fine_tuning.jobs.list_events(job_id, limit=100).data
    return next(e.data for e in events if e.message == "The job has successfully completed")


def _rewards(stack, model: str, inputs: list) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/rewards",
        json={"model": model, "input": inputs},
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=120,
    )


def _store(stack, tmp_path) -> ModelStore:
    settings = Settings(
        data_dir=tmp_path,
        model_cache_dir=stack.env["LATHE_MODEL_CACHE_DIR"],
        storage={
            "url": stack.env["LATHE_STORAGE_URL"],
            "s3_endpoint_url": stack.env["LATHE_S3_ENDPOINT_URL"],
        },
    )
    return ModelStore(settings, get_storage(settings))


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_dpo_job_raises_the_held_out_margin(stack, files, tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    method = {
        "type": "dpo",
        "dpo": {
            "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate": 3e-3, "beta": 0.1}
        },
    }
    job = _create(stack.client(), method, files["pairs"], validation_file=files["valid_pairs"])
    job, _ = _succeeded(stack, job.id)

    metrics = _metrics(stack, job.id)
    assert len(metrics) == 12 and job.hyperparameters.model_extra["beta"] == 0.1
    assert {
        "train_loss",
        "train_reward_margin",
        "train_rewards_chosen",
        "train_rewards_rejected",
        "train_pair_accuracy",
    } <= set(metrics[-1])
    print(
        f"DPO reward margin: step 1 {metrics[0]['train_reward_margin']:.3f}, "
        f"step {len(metrics)} {metrics[-1]['train_reward_margin']:.3f}"
    )
    assert metrics[-1]["train_reward_margin"] > metrics[0]["train_reward_margin"]
    assert _final(stack, job.id)["valid_reward_margin"] > 0

    row = stack.client().models.retrieve(job.fine_tuned_model)
    key = f"orgs/{job.organization_id}/models/{job.id}/artifact"
    stored = StoredModel(row.id, "tiny-llama", key)
    tuned, tokenizer = _store(stack, tmp_path).load(stored)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = preference_margin(base, AutoTokenizer.from_pretrained(tiny_model), VALID)
    after = preference_margin(tuned, tokenizer, VALID)
    print(f"DPO held-out log-prob margin: base {before:.2f}, tuned {after:.2f}")
    assert after > before + 2.0


@pytest.fixture(scope="module")
def reward_model(stack, files):
    method = {"type": "reward_model", "reward_model": {"hyperparameters": RM_HP}}
    job = _create(stack.client(), method, files["pairs"], validation_file=files["valid_pairs"])
    job, _ = _succeeded(stack, job.id)
    return job


def test_reward_model_job_and_rewards_endpoint(stack, reward_model):
    job = reward_model
    final = _final(stack, job.id)
    metrics = _metrics(stack, job.id)
    print(
        f"reward model: train loss {metrics[0]['train_loss']:.3f} -> "
        f"{metrics[-1]['train_loss']:.3f}, valid pair accuracy {final['valid_pair_accuracy']}"
    )
    assert final["valid_pair_accuracy"] >= 0.9
    assert (
        stack.client().models.retrieve(job.fine_tuned_model).model_extra["task"] == "reward_model"
    )

    chosen = [r["input"]["messages"] + r["preferred_output"] for r in VALID]
    rejected = [r["input"]["messages"] + r["non_preferred_output"] for r in VALID]
    r = _rewards(stack, job.fine_tuned_model, chosen + [{"messages": m} for m in rejected])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == job.fine_tuned_model
    assert [d["index"] for d in body["data"]] == list(range(8))
    assert all(d["object"] == "reward" for d in body["data"]) and body["usage"]["total_tokens"]
    scores = [d["score"] for d in body["data"]]
    assert all(c > w for c, w in zip(scores[:4], scores[4:], strict=True)), scores
    as_text = _rewards(stack, job.fine_tuned_model, ["7 1 3", "red blue dog"]).json()["data"]
    assert len(as_text) == 2 and all(math.isfinite(d["score"]) for d in as_text)


def test_rewards_and_chat_refuse_the_wrong_kind_of_model(stack, reward_model):
    r = _rewards(stack, "tiny-llama", ["hi"])
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client().chat.completions.create(
            model=reward_model.fine_tuned_model, messages=[{"role": "user", "content": "hi"}]
        )
    assert _error(exc.value)["param"] == "model"
    with pytest.raises(openai.BadRequestError) as exc:  # a scorer cannot be trained to generate
        _create(
            stack.client(), {"type": "supervised"}, "file-x", model=reward_model.fine_tuned_model
        )
    assert _error(exc.value)["param"] == "model"


def test_reward_sources_are_checked_at_creation(stack, files, reward_model):
    client = stack.client()
    cases = [
        (
            {"type": "ppo", "ppo": {"reward_model": "ft:tiny-llama:acme::nope"}},
            404,
            "method.ppo.reward_model",
        ),
        ({"type": "ppo", "ppo": {"reward_model": "tiny-llama"}}, 400, "method.ppo.reward_model"),
        (
            {"type": "grpo", "grpo": {"grader": {"type": "python", "name": "x", "source": "1"}}},
            400,
            "method.grpo.grader.type",
        ),
        (
            {
                "type": "grpo",
                "grpo": {
                    "grader": {"type": "regex", "name": "x", "input": "{{oops}}", "pattern": "a"}
                },
            },
            400,
            "method.grpo.grader",
        ),
        ({"type": "grpo"}, 400, "method"),
    ]
    for method, status, param in cases:
        with pytest.raises(openai.APIStatusError) as exc:
            _create(client, method, files["prompts"])
        assert exc.value.status_code == status and _error(exc.value)["param"] == param, method
    other = stack.client(stack.other_key)  # another org's reward model does not exist for it
    with pytest.raises(openai.NotFoundError):
        _create(
            other,
            {"type": "ppo", "ppo": {"reward_model": reward_model.fine_tuned_model}},
            files["prompts"],
        )


def test_grpo_job_with_a_grader_raises_the_mean_reward(stack, files):
    method = {
        "type": "grpo",
        "grpo": {
            "grader": DIGIT_GRADER,
            "hyperparameters": {
                "total_steps": 20,
                "batch_size": 4,
                "num_generations": 4,
                "max_new_tokens": 8,
                "learning_rate": 3e-3,
            },
        },
    }
    job, _ = _succeeded(stack, _create(stack.client(), method, files["prompts"]).id)
    metrics = _metrics(stack, job.id)
    assert [m["step"] for m in metrics] == list(range(1, 21))
    assert all(math.isfinite(m["kl"]) and math.isfinite(m["entropy"]) for m in metrics)
    first = sum(m["mean_reward"] for m in metrics[:5]) / 5
    last = sum(m["mean_reward"] for m in metrics[-5:]) / 5
    print(
        f"GRPO mean reward: first 5 steps {first:.2f}, last 5 {last:.2f}; "
        f"kl {metrics[0]['kl']:.3f} -> {metrics[-1]['kl']:.3f}"
    )
    assert last > first + 0.2


def test_ppo_job_with_a_reward_model(stack, files, reward_model):
    method = {
        "type": "ppo",
        "ppo": {"reward_model": reward_model.fine_tuned_model, "hyperparameters": PPO_HP},
    }
    job, _ = _succeeded(stack, _create(stack.client(), method, files["prompts"]).id)
    metrics = _metrics(stack, job.id)
    assert [m["step"] for m in metrics] == list(range(1, 21))
    for key in ("mean_reward", "kl", "entropy", "policy_loss", "value_loss", "train_loss"):
        assert all(math.isfinite(m[key]) for m in metrics), key
    first = sum(m["mean_reward"] for m in metrics[:5]) / 5
    last = sum(m["mean_reward"] for m in metrics[-5:]) / 5
    print(
        f"PPO (reward model) mean reward: first 5 steps {first:.2f}, last 5 {last:.2f}; "
        f"kl {metrics[0]['kl']:.3f} -> {metrics[-1]['kl']:.3f}"
    )
    assert last > first
    reply = stack.client().chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    assert reply.choices[0].message.content is not None


def _pipeline(stack, stages: list[dict]) -> list[dict]:
    r = httpx.post(
        f"{stack.url}/fine_tuning/pipelines",
        json={"stages": stages},
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _stages(files, rm_hp: dict) -> list[dict]:
    return [
        {
            "name": "sft",
            "model": "tiny-llama",
            "training_file": files["chat"],
            "seed": 7,
            "adapter": LORA,
            "method": {"type": "supervised", "supervised": {"hyperparameters": SFT_HP}},
        },
        {
            "name": "rm",
            "model": "$sft",
            "training_file": files["pairs"],
            "seed": 7,
            "adapter": LORA,
            "method": {"type": "reward_model", "reward_model": {"hyperparameters": rm_hp}},
        },
        {
            "name": "ppo",
            "model": "$sft",
            "training_file": files["prompts"],
            "seed": 7,
            "adapter": LORA,
            "method": {
                "type": "ppo",
                "ppo": {"reward_model": "$rm", "hyperparameters": PIPELINE_PPO_HP},
            },
        },
    ]


def test_sft_reward_model_ppo_pipeline_from_one_request(stack, files):
    started = time.monotonic()
    sft, rm, ppo = _pipeline(stack, _stages(files, PIPELINE_RM_HP))
    assert [j["stage"] for j in (sft, rm, ppo)] == ["sft", "rm", "ppo"]
    assert sft["depends_on"] is None and rm["depends_on"] == [sft["id"]]
    assert ppo["depends_on"] == sorted([sft["id"], rm["id"]])
    assert ppo["status"] == "validating_files" and ppo["model"] == sft["id"]

    done, seen = wait_job(stack.client(), ppo["id"], timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    print(f"pipeline: {time.monotonic() - started:.1f}s for three stages")
    assert seen[-3:] == ["queued", "running", "succeeded"] or seen[-2:] == ["running", "succeeded"]
    client = stack.client()
    sft_job = client.fine_tuning.jobs.retrieve(sft["id"])
    rm_job = client.fine_tuning.jobs.retrieve(rm["id"])
    assert done.model == sft_job.fine_tuned_model == rm_job.model
    assert done.method.model_extra["ppo"]["reward_model"] == rm_job.fine_tuned_model
    assert sft_job.finished_at <= rm_job.finished_at <= done.finished_at
    metrics = _metrics(stack, done.id)
    assert len(metrics) == 6 and all(math.isfinite(m["kl"]) for m in metrics)
    # The reward model (a head on the merged SFT model) and the policy (an adapter on it) serve.
    scores = _rewards(
        stack,
        rm_job.fine_tuned_model,
        [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "1 2"}]],
    )
    assert scores.status_code == 200, scores.text
    reply = client.chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "Hi"}], max_tokens=6
    )
    assert reply.usage.completion_tokens > 0


def test_a_broken_middle_stage_fails_the_rest_of_the_chain(stack, files):
    stages = _stages(files, {**PIPELINE_RM_HP, "max_seq_length": 8})  # no pair fits in 8 tokens
    stages[0]["method"]["supervised"]["hyperparameters"] = {**SFT_HP, "n_epochs": 1}
    sft, rm, ppo = _pipeline(stack, stages)
    client = stack.client()
    done, _ = wait_job(client, ppo["id"], timeout=300)
    assert done.status == "failed"
    assert client.fine_tuning.jobs.retrieve(sft["id"]).status == "succeeded"
    rm_job = client.fine_tuning.jobs.retrieve(rm["id"])
    assert rm_job.status == "failed" and "max_seq_length" in rm_job.error.message
    assert done.error.code == "dependency_failed"
    assert done.error.message.startswith(f"Dependency failed: stage 'rm' ({rm['id']}) failed: ")
    assert rm_job.error.message in done.error.message
    events = [e.message for e in client.fine_tuning.jobs.list_events(ppo["id"]).data]
    assert any(m.startswith("Fine-tuning job failed: Dependency failed") for m in events)
    assert not any(m.startswith("Fine-tuning job started") for m in events)  # never ran


def test_pipeline_requests_are_validated_per_stage(stack, files):
    before = len(stack.client().fine_tuning.jobs.list(limit=100).data)
    stages = _stages(files, RM_HP)
    stages[2]["method"]["ppo"]["reward_model"] = "$nope"
    r = httpx.post(
        f"{stack.url}/fine_tuning/pipelines",
        json={"stages": stages},
        headers={"Authorization": f"Bearer {stack.key}"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "stages[2].method.ppo.reward_model"
    stages = _stages(files, RM_HP)
    stages[2]["method"]["ppo"]["reward_model"] = "$sft"  # a generator is no reward model
    r = httpx.post(
        f"{stack.url}/fine_tuning/pipelines",
        json={"stages": stages},
        headers={"Authorization": f"Bearer {stack.key}"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "stages[2].method.ppo.reward_model"
    assert before == len(stack.client().fine_tuning.jobs.list(limit=100).data)  # none created
