"""GRPO and PPO recipes on the tiny model: rewards from a grader or from a reward model.

The reward is "the completion contains a digit" (a regex grader, or a reward model trained to
prefer digit answers); the random tiny policy emits a digit in roughly a quarter of its short
completions, so the mean reward has room to rise within a few dozen steps.
"""

from __future__ import annotations

import math

import pytest

from core.jobspec.recipe import SpecError
from core.methods import grpo, ppo, reward_model
from tests.core.methods.conftest import rlhf_ctx
from tests.utils.rlhf import DIGIT_GRADER, QUESTIONS, preference_rows, prompt_rows

PROMPTS = prompt_rows(QUESTIONS)


def _rise(events: list[dict], n: int = 5) -> tuple[float, float]:
    rewards = [e["mean_reward"] for e in events]
    return sum(rewards[:n]) / n, sum(rewards[-n:]) / n


def test_grpo_with_a_grader_raises_the_mean_reward(tiny_model, tmp_path):
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
                "beta": 0.04,
            },
        },
    }
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, PROMPTS)

    result = grpo.run(ctx)

    events = reporter.metrics_events
    assert [e["step"] for e in events] == list(range(1, 21))
    assert all(math.isfinite(e[k]) for e in events for k in ("mean_reward", "kl", "entropy"))
    first, last = _rise(events)
    print(
        f"GRPO: mean reward first 5 steps {first:.2f}, last 5 {last:.2f}, kl {events[-1]['kl']:.3f}"
    )
    assert last > first + 0.2
    assert not (result.artifact_dir / "ref").exists()


def test_ppo_with_a_grader_raises_the_mean_reward(tiny_model, tmp_path):
    method = {
        "type": "ppo",
        "ppo": {
            "grader": DIGIT_GRADER,
            "hyperparameters": {
                "total_steps": 20,
                "batch_size": 24,
                "mini_batch_size": 12,
                "ppo_epochs": 2,
                "max_new_tokens": 8,
                "temperature": 1.0,
                "learning_rate": 1e-3,
                "kl_coef": 0.05,
            },
        },
    }
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, PROMPTS)

    ppo.run(ctx)

    events = reporter.metrics_events
    assert [e["step"] for e in events] == list(range(1, 21))
    for key in ("mean_reward", "kl", "entropy", "policy_loss", "value_loss", "train_loss"):
        assert all(math.isfinite(e[key]) for e in events), key
    first, last = _rise(events)
    print(
        f"PPO: mean reward first 5 steps {first:.2f}, last 5 {last:.2f}, kl {events[-1]['kl']:.3f}"
    )
    assert last > first + 0.2


@pytest.fixture(scope="module")
def digit_reward_model(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("rm")
    method = {
        "type": "reward_model",
        "reward_model": {
            "hyperparameters": {"n_epochs": 4, "batch_size": 4, "learning_rate": 3e-3}
        },
    }
    ctx, _ = rlhf_ctx(root, tiny_model, method, preference_rows(QUESTIONS, per_question=2))
    return reward_model.run(ctx).artifact_dir


def test_grpo_scores_with_a_reward_model(tiny_model, tmp_path, digit_reward_model):
    method = {
        "type": "grpo",
        "grpo": {
            "reward_model": "ft:rm",
            "hyperparameters": {
                "total_steps": 12,
                "batch_size": 4,
                "num_generations": 4,
                "max_new_tokens": 8,
                "learning_rate": 3e-3,
            },
        },
    }
    ctx, reporter = rlhf_ctx(
        tmp_path, tiny_model, method, PROMPTS, reward_model_dirs=(tiny_model, digit_reward_model)
    )
    grpo.run(ctx)
    first, last = _rise(reporter.metrics_events, 4)
    print(f"GRPO with a reward model: mean reward first 4 steps {first:.2f}, last 4 {last:.2f}")
    assert last > first


def test_a_grader_reading_a_missing_item_field_fails_before_training(tiny_model, tmp_path):
    grader = {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    }
    method = {"type": "grpo", "grpo": {"grader": grader}}
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, PROMPTS)
    with pytest.raises(SpecError, match="line 1") as err:
        grpo.run(ctx)
    assert err.value.param == "method.grpo.grader" and not reporter.metrics_events


@pytest.mark.parametrize("adapter", ["qlora", "full"])
@pytest.mark.parametrize("recipe", ["grpo", "ppo"])
def test_online_methods_run_with_every_weight_type(recipe, adapter, tiny_model, tmp_path):
    """A couple of steps each: QLoRA (4-bit base, 8-bit optimizer) and full weights (a frozen
    copy as the reference) go through sampling, scoring and updates."""
    hp = {"total_steps": 2, "batch_size": 4, "max_new_tokens": 4, "learning_rate": 1e-4}
    if recipe == "grpo":
        hp["num_generations"] = 2
    else:
        hp["mini_batch_size"] = 2
    method = {"type": recipe, recipe: {"grader": DIGIT_GRADER, "hyperparameters": hp}}
    ctx, reporter = rlhf_ctx(tmp_path, tiny_model, method, PROMPTS, adapter=adapter)
    result = {"grpo": grpo, "ppo": ppo}[recipe].run(ctx)
    assert [e["step"] for e in reporter.metrics_events] == [1, 2]
    assert all(math.isfinite(e["mean_reward"]) for e in reporter.metrics_events)
    assert result.adapter_type == adapter and (result.artifact_dir / "lathe_adapter.json").exists()
