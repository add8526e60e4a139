"""Every numeric knob of the job spec is bounded (core.jobspec.bounds); a violation names the
field's own path, never a union member's, and the model's context bounds max_seq_length."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from core.jobspec import bounds as mx
from core.jobspec.job import JobCreate
from core.jobspec.recipe import SpecError
from core.training.auto import check_spec_context, model_context

GRADER = {"type": "string_check", "name": "g", "input": "a", "reference": "a", "operation": "eq"}


def body(method: str, **hp) -> dict:
    block: dict = {"hyperparameters": hp}
    if method in ("ppo", "grpo", "reinforcement"):
        block["grader"] = GRADER
    return {"model": "m", "training_file": "f", "method": {"type": method, method: block}}


def error_of(data: dict) -> tuple[str, str]:
    with pytest.raises(ValidationError) as exc:
        JobCreate.model_validate(data)
    first = exc.value.errors()[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"]


@pytest.mark.parametrize(
    ("method", "field", "value"),
    [
        ("supervised", "n_epochs", mx.MAX_EPOCHS + 1),
        ("supervised", "batch_size", 10**9),
        ("supervised", "max_seq_length", 10**9),
        ("supervised", "seed", 2**63 + 1),
        ("supervised", "gradient_accumulation_steps", 10**6),
        ("supervised", "eval_interval", 10**12),
        ("supervised", "learning_rate", float("inf")),
        ("supervised", "learning_rate_multiplier", float("nan")),
        ("dpo", "n_epochs", 10**6),
        ("dpo", "batch_size", 10**6),
        ("dpo", "beta", 1e9),
        ("reward_model", "max_seq_length", 10**9),
        ("grpo", "num_generations", 10**6),
        ("grpo", "max_new_tokens", 10**6),
        ("grpo", "total_steps", 10**12),
        ("grpo", "num_iterations", 10**6),
        ("grpo", "temperature", 1e6),
        ("reinforcement", "compute_multiplier", 100),
        ("reinforcement", "eval_samples", 10**6),
        ("reinforcement", "eval_interval", 10**12),
        ("reinforcement", "num_generations", 10**6),
        ("reinforcement", "n_epochs", 10**6),
        ("ppo", "ppo_epochs", 10**6),
        ("ppo", "mini_batch_size", 10**6),
        ("ppo", "max_new_tokens", 10**6),
        ("ppo", "kl_coef", float("inf")),
    ],
)
def test_out_of_range_names_the_field(method, field, value):
    param, message = error_of(body(method, **{field: value}))
    assert param == f"method.{method}.hyperparameters.{field}"
    assert "less than or equal" in message or "at most" in message


def test_job_seed_is_bounded():
    assert error_of({"model": "m", "training_file": "f", "seed": 2**63 + 1})[0] == "seed"
    assert JobCreate.model_validate({"model": "m", "training_file": "f", "seed": mx.MAX_SEED})


def test_the_maxima_themselves_are_accepted():
    spec = JobCreate.model_validate(
        body("grpo", num_generations=mx.MAX_NUM_GENERATIONS, max_new_tokens=mx.MAX_NEW_TOKENS)
    )
    assert spec.method.grpo.hyperparameters.num_generations == mx.MAX_NUM_GENERATIONS
    assert JobCreate.model_validate(body("supervised", max_seq_length=mx.MAX_SEQ_LENGTH))


def test_max_seq_length_within_the_model_context(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    assert model_context(tmp_path) == 512
    check_spec_context(JobCreate.model_validate(body("dpo", max_seq_length=512)), tmp_path)
    check_spec_context(JobCreate.model_validate(body("dpo")), tmp_path)  # auto
    with pytest.raises(SpecError, match="context of 512 tokens") as exc:
        check_spec_context(JobCreate.model_validate(body("dpo", max_seq_length=513)), tmp_path)
    assert exc.value.param == "method.dpo.hyperparameters.max_seq_length"
    assert model_context(tmp_path / "missing") is None
